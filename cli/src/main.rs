//! `blast`: parse flags, build a plan, run it, report, map errors to exit codes.

mod args;
mod json;
mod progress;
mod summary;
mod timespan;

use anyhow::Context;
use blast_engine::{Engine, EngineError, RunHandle};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for bad flags or input (as clap uses for its own errors).
const EXIT_USAGE: u8 = 2;
/// Exit code when the run could not happen or its results could not be written.
const EXIT_RUN: u8 = 1;

fn main() -> ExitCode {
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
        Ok(()) => ExitCode::SUCCESS,
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

fn run(args: &args::Args) -> Result<(), Failure> {
    // Without a URL, run against the built-in reference target on a loopback port.
    let local = match &args.url {
        Some(_) => None,
        None => Some(
            blast_target::Server::start(([127, 0, 0, 1], 0).into(), Default::default())
                .context("cannot start the built-in reference target")
                .map_err(Failure::Run)?,
        ),
    };
    let url = match (&args.url, &local) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => {
            let url = format!("{}/", server.url());
            println!("no URL given: running against the built-in reference target at {url}");
            url
        }
        (None, None) => unreachable!("a local target is started when no URL is given"),
    };
    let plan = args.plan(&url).map_err(Failure::Usage)?;
    let method = plan.script.names()[0].method.clone();
    if let Some(path) = &args.json {
        // Fail before the run, not after it, when the output cannot be written.
        create_parent(path).map_err(Failure::Usage)?;
        std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::Usage)?;
    }
    let mut progress = progress::Progress::new(plan.run_time);
    let engine = Engine::new(plan).map_err(|e| Failure::Usage(e.into()))?;
    watch_signals(engine.handle());
    let on_interval = |s: &blast_engine::Snapshot<'_>| {
        if let Some(line) = progress.observe(s) {
            eprintln!("{line}");
        }
    };
    let report = engine.run(on_interval).map_err(|e| match e {
        EngineError::Unreachable { .. } | EngineError::Thread(_) => Failure::Run(e.into()),
        other => Failure::Usage(other.into()),
    })?;
    print!("{}", summary::render(&report, &url));
    let _ = std::io::stdout().flush();
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json::summary(&report, &url, &method))
            .expect("a JSON value always serializes");
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::Run)?;
    }
    Ok(())
}

fn create_parent(path: &std::path::Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display())),
        _ => Ok(()),
    }
}

/// First Ctrl-C or SIGTERM: stop sending and finish normally. A second one: exit at once.
fn watch_signals(stop: RunHandle) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        let mut seen = 0;
        for _ in signals.forever() {
            seen += 1;
            if seen == 1 {
                eprintln!("blast: stopping (in-flight requests get the stop timeout); press Ctrl-C again to quit now");
                stop.stop();
            } else {
                std::process::exit(130);
            }
        }
    });
}
