//! `blast`: parse flags, build a plan, run it, report, map errors to exit codes.

mod args;
mod compare;
mod convert;
mod finish;
mod k8s;
mod merge;
mod metrics;
mod monitor;
mod outputs;
mod plan;
mod progress;
mod report;
mod run;
mod selftest;
mod summary;
mod web;

use blast_engine::{redact, RunHandle};
use clap::Parser;
use finish::{Failure, Verdict};
use std::io::Write;
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
/// Exit code when `blast compare` found a change that crosses a `--fail-on` gate.
const EXIT_GATE: u8 = 4;
/// Exit code after a second Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_ABORTED: u8 = 130;

/// HTTP load generator: Locust's concepts at wrk's efficiency, with numbers you can trust.
#[derive(Parser)]
#[command(name = "blast", version, about, max_term_width = 100)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_value_name = "COMMAND"
)]
#[command(after_help = "Examples:\n  \
    blast --profile burst --peak 1000                the P4.3 burst against the built-in target\n  \
    blast --profile cab --host http://10.0.0.5:8000  a built-in profile against your API\n  \
    blast -f scenario.toml -u 100 -r 10 -t 5m        a scenario file, Locust-style flags\n  \
    blast http://127.0.0.1:8080/ -u 64 -t 10s        64 users looping GET (the wrk model)\n  \
    blast http://127.0.0.1:8080/ --rate 2000 -t 1m   2000 requests/s, latency from schedule\n  \
    blast report                                     the P4.3 results report from results/*.json\n  \
    blast selftest                                   this machine's generator ceiling per core\n  \
    blast merge shard-*.json --json run.json         one exact run from its shards' records\n  \
    blast compare old.json -- new.json               did it get slower, beyond the noise?\n  \
    blast k8s --profile burst --shards 10 --host URL a Kubernetes Job of 10 shards\n\n\
    Exit codes:\n  \
    0    the run completed: every criterion held, or (without criteria) no request failed\n  \
    1    without criteria, a request failed (see --exit-code-on-error); or the run could not\n       \
    happen, its results could not be written, or a worker thread panicked\n  \
    2    bad flags or input\n  \
    3    a success criterion failed\n  \
    4    blast compare: a change crossed a --fail-on gate\n  \
    130  a second Ctrl-C cancelled the requests in flight (results still written)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: args::Args,
}

/// What `blast` does besides a run.
#[derive(clap::Subcommand)]
enum Command {
    /// Compare runs' records: did the new build get slower, beyond the noise?
    Compare(compare::CompareArgs),
    /// Translate a locustfile into a scenario file (or only check what translates)
    Convert(convert::ConvertArgs),
    /// Print Kubernetes manifests that run a job as shards
    K8s(Box<k8s::K8sArgs>),
    /// Merge shards' records into one exact run, its outputs and verdict
    Merge(merge::MergeArgs),
    /// Write the P4.3 results report from runs' --json records
    Report(report::ReportArgs),
    /// Measure this machine's generator ceiling per core
    Selftest(selftest::SelftestArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    match cli.command {
        // Unreadable records are bad input; a selftest that cannot run is a run failure.
        Some(Command::Report(args)) => {
            untrusted_input("report");
            finish("blast report", report::run(&args), EXIT_USAGE)
        }
        Some(Command::Compare(args)) => {
            untrusted_input("compare");
            match compare::run(&args) {
                Ok(false) => ExitCode::SUCCESS,
                Ok(true) => ExitCode::from(EXIT_GATE),
                Err(e) => {
                    eprintln!("blast compare: error: {}", redact::text(&format!("{e:#}")));
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Some(Command::Merge(args)) => {
            untrusted_input("merge");
            exit_code(merge::run(&args), "blast merge")
        }
        Some(Command::Selftest(args)) => finish("blast selftest", selftest::run(&args), EXIT_RUN),
        Some(Command::K8s(args)) => finish("blast k8s", k8s::run(&args), EXIT_USAGE),
        Some(Command::Convert(args)) => finish("blast convert", convert::run(&args), EXIT_USAGE),
        None => {
            let mut args = cli.run;
            args.resolve_positionals();
            exit_code(run_or_serve(&args), "blast")
        }
    }
}

/// What the run flags ask for: list or print the profiles, print the plan, serve the web UI,
/// or run.
fn run_or_serve(args: &args::Args) -> Result<Verdict, Failure> {
    let usage = |e: anyhow::Error| Failure::Usage(e);
    if args.list_profiles {
        for (name, _) in blast_p43::PROFILES {
            let s = blast_p43::profile(name).map_err(|e| usage(e.into()))?;
            println!("{name:<12} {}", s.description);
        }
        return Ok(Verdict::Pass);
    }
    if let Some(name) = &args.print_profile {
        let source = blast_p43::profile_source(name).map_err(|e| usage(e.into()))?;
        // A reader that stops early (`| head`) is not an error.
        let _ = write!(std::io::stdout(), "{source}");
        return Ok(Verdict::Pass);
    }
    if args.web {
        return web::serve(args);
    }
    let plan = plan::RunPlan::resolve(args).map_err(usage)?;
    if args.print_plan {
        let _ = writeln!(std::io::stdout(), "{}", plan.to_json().map_err(usage)?);
        return Ok(Verdict::Pass);
    }
    run::run(&plan, None)
}

/// The exit code of a run (or a merge) that ended with `outcome`, its error printed.
fn exit_code(outcome: Result<Verdict, Failure>, program: &str) -> ExitCode {
    match outcome {
        Ok(Verdict::Pass) => ExitCode::SUCCESS,
        Ok(Verdict::CriteriaFailed) => ExitCode::from(EXIT_CRITERIA),
        Ok(Verdict::RequestsFailed(code)) => {
            eprintln!("{program}: requests failed and the run has no success criteria: exit code {code} (set it with --exit-code-on-error)");
            ExitCode::from(code)
        }
        Ok(Verdict::Aborted) => ExitCode::from(EXIT_ABORTED),
        Err(Failure::Usage(e)) => {
            eprintln!("{program}: error: {}", redact::text(&format!("{e:#}")));
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Run(e)) => {
            eprintln!("{program}: error: {}", redact::text(&format!("{e:#}")));
            ExitCode::from(EXIT_RUN)
        }
    }
}

/// The exit code of a subcommand that ended with `outcome` (`failure` for an error, printed).
fn finish(program: &str, outcome: anyhow::Result<()>, failure: u8) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: error: {}", redact::text(&format!("{e:#}")));
            ExitCode::from(failure)
        }
    }
}

/// `blast report` and `blast merge` read records anyone may have written: whatever a crafted
/// record trips in blast ends as bad input (one line, exit 2), not as a crash.
fn untrusted_input(subcommand: &str) {
    let program = format!("blast {subcommand}");
    std::panic::set_hook(Box::new(move |info| {
        let why = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("{program}: error: a record is inconsistent ({why}); if it was written by blast, please report this");
        std::process::exit(i32::from(EXIT_USAGE));
    }));
}

/// Folds clap's multi-line message into one line, dropping its usage (every line from
/// `Usage:` on) and help hints.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !["For more information", "tip:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| l.trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one signal watcher, for a run and for the web UI. Each Ctrl-C or SIGTERM first calls
/// `running`, which says which run is going (the web UI also starts quitting there). For that
/// run, the first signal stops sending and lets in-flight requests finish, results written;
/// the second cancels what is in flight at once, still writing everything; the third exits
/// with 130. Returns the count of signals seen.
fn watch_signals(
    mut running: impl FnMut() -> Option<RunHandle> + Send + 'static,
) -> Arc<AtomicU32> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let seen = Arc::new(AtomicU32::new(0));
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return seen;
    };
    let counter = seen.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            let Some(run) = running() else {
                continue;
            };
            match n {
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
