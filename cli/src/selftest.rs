//! `blast selftest`: this machine's generator ceiling, measured against an in-process minimal
//! target: requests per second one core can send, CPU microseconds per request, and how many
//! cores a target rate needs.

use anyhow::Context;
use blast_engine::{Engine, Plan, RequestTemplate, Requests, Schedule, Target};
use blast_scenarios::parse_duration;
use std::time::Duration;

use crate::monitor::WorkerCpu;

/// Measures the generator's ceiling on this machine.
#[derive(clap::Args, Debug)]
#[command(max_term_width = 100)]
pub struct SelftestArgs {
    /// How long to measure.
    #[arg(short = 't', long = "run-time", default_value = "5s", value_parser = parse_duration)]
    pub run_time: Duration,

    /// Users (keep-alive connections) on the measured worker.
    #[arg(short = 'u', long, default_value_t = 64)]
    pub users: u64,

    /// Also say how many cores this rate (requests/s) needs.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// A core is planned at this share of its ceiling, leaving room for bursts and the OS.
const PLANNED_LOAD: f64 = 0.8;

/// Runs the measurement and prints the figures.
pub fn run(args: &SelftestArgs) -> anyhow::Result<()> {
    if args.users == 0 || args.run_time < Duration::from_secs(2) {
        anyhow::bail!("selftest needs at least 1 user and a run time of at least 2s");
    }
    let server = blast_target::MinimalServer::start(([127, 0, 0, 1], 0).into())
        .context("cannot start the minimal target")?;
    let (target, _) = Target::parse(&format!("{}/", server.url()))?;
    let get = RequestTemplate::new(&target, "GET", "/", &[], Default::default())?;
    let mut plan = Plan::new(
        target,
        Requests::new(vec![get]),
        Schedule::users(args.users),
    );
    plan.workers = 1;
    plan.run_time = args.run_time;
    let cores = blast_engine::available_cores().len();
    println!(
        "blast selftest: one worker (pinned to the first core), the minimal target on its own thread, {} users, {:.0} s ({cores} cores available)",
        args.users,
        args.run_time.as_secs_f64()
    );
    let engine = Engine::new(plan)?;
    // The first interval is warm-up; CPU and requests are counted from its end to the run time.
    let mut cpu = WorkerCpu::default();
    let (mut requests, mut cpu_secs, mut wall) = (0u64, 0.0, 0.0);
    let run_time = args.run_time;
    engine.run(|s| {
        let used = cpu.seconds_since_last();
        if s.start.is_zero() || s.elapsed > run_time {
            return;
        }
        requests += s.window_total.counters.requests();
        cpu_secs += used;
        wall += s.span.as_secs_f64();
    })?;
    if requests == 0 || cpu_secs <= 0.0 {
        anyhow::bail!(
            "nothing was measured (the worker's CPU time cannot be read from /proc on this system)"
        );
    }
    let us_per_request = cpu_secs * 1e6 / requests as f64;
    let per_core = requests as f64 / cpu_secs;
    println!(
        "  measured      {requests} requests in {wall:.1} s ({:.0}/s) using {cpu_secs:.2} CPU-s of the worker ({:.0}% busy)",
        requests as f64 / wall,
        cpu_secs / wall * 100.0
    );
    println!(
        "  per core      {per_core:.0} requests/s at most, {us_per_request:.2} CPU-µs per request"
    );
    let needs = |rate: f64| (rate * us_per_request / 1e6 / PLANNED_LOAD).ceil().max(1.0);
    let mut rates = vec![10_000.0, 30_000.0, 100_000.0];
    rates.extend(args.rate.filter(|r| !rates.contains(r)));
    let plan: Vec<String> = rates
        .iter()
        .map(|r| format!("{r:.0} req/s: {:.0}", needs(*r)))
        .collect();
    println!(
        "  cores needed  {} (at {:.0}% of each core's ceiling, plus what the target needs)",
        plan.join(", "),
        PLANNED_LOAD * 100.0
    );
    Ok(())
}
