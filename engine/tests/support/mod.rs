//! What the engine's integration tests share.

use blast_engine::{Engine, Plan, Report};
use std::time::Duration;

/// `plan` fit for tests that run side by side: two workers, not pinned (pinning every test's
/// workers to the same cores would only slow them down), running `run_time` in intervals of
/// `interval`.
pub fn side_by_side(mut plan: Plan, run_time: Duration, interval: Duration) -> Plan {
    plan.workers = 2;
    plan.pin = false;
    plan.run_time = run_time;
    plan.interval = interval;
    plan
}

/// Runs `plan` to the end, with no observer.
pub fn run(plan: Plan) -> Report {
    Engine::new(plan).unwrap().run(|_| {}).unwrap()
}
