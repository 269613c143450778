//! `blast`: parse flags, build a plan, run it, report, map errors to exit codes.

mod args;
mod convert;
mod k8s;
mod merge;
mod monitor;
mod outputs;
mod progress;
mod report;
mod run;
mod selftest;
mod summary;
mod web;

use blast_engine::{redact, RunHandle};
use clap::Parser;
use run::{Failure, Verdict};
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
    let command = std::env::args().nth(1);
    if let Some(name) = command
        .as_deref()
        .filter(|s| ["report", "merge"].contains(s))
    {
        untrusted_input(name);
    }
    match command.as_deref() {
        // Unreadable records are bad input; a selftest that cannot run is a run failure.
        Some("report") => return subcommand::<report::ReportArgs>(report::run, EXIT_USAGE),
        Some("selftest") => return subcommand::<selftest::SelftestArgs>(selftest::run, EXIT_RUN),
        Some("k8s") => return subcommand::<k8s::K8sArgs>(k8s::run, EXIT_USAGE),
        Some("convert") => return subcommand::<convert::ConvertArgs>(convert::run, EXIT_USAGE),
        Some("merge") => {
            return match parse::<merge::MergeArgs>() {
                Ok(args) => exit_code(merge::run(&args), "blast merge"),
                Err(code) => code,
            }
        }
        _ => {}
    }
    let args = match args::Args::try_parse() {
        Ok(mut args) => {
            args.resolve_positionals();
            args
        }
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
    let outcome = if args.web {
        web::serve(&args)
    } else {
        run::run(&args)
    };
    exit_code(outcome, "blast")
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

/// A subcommand's flags; `Err` is the exit code after --help, --version or a bad flag.
fn parse<A: Parser>() -> Result<A, ExitCode> {
    let name = std::env::args().nth(1).unwrap_or_default();
    // Named as typed ("blast merge"), so usage lines read as a command to copy.
    let argv = std::iter::once(format!("blast {name}")).chain(std::env::args().skip(2));
    match A::try_parse_from(argv) {
        Ok(args) => Ok(args),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("blast {name}: error: {}", one_line(&e.render().to_string()));
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// `blast report ...` and `blast selftest ...`: their own flags, the same error conventions.
fn subcommand<A: Parser>(action: fn(&A) -> anyhow::Result<()>, failure: u8) -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    let args = match parse::<A>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match action(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blast {name}: error: {}", redact::text(&format!("{e:#}")));
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
