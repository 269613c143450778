//! What the engine's integration tests share.

// Each test crate uses its part.
#![allow(dead_code)]

use blast_engine::{Client, Engine, Io, Plan, Report};
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

/// A connection's HTTP/1.1 client and how its sockets do I/O.
pub type Backend = (Client, Io);

/// Both clients over both socket backends. The tests that loop over these (and over [`IOS`])
/// are the conformance suite: `--io epoll` and `--io uring` pass the same tests.
pub const BACKENDS: [Backend; 4] = [
    (Client::Raw, Io::Epoll),
    (Client::Raw, Io::Uring),
    (Client::Hyper, Io::Epoll),
    (Client::Hyper, Io::Uring),
];

/// Both socket backends.
pub const IOS: [Io; 2] = [Io::Epoll, Io::Uring];

/// The raw client with the default I/O (io_uring where allowed).
pub const RAW: Backend = (Client::Raw, Io::Auto);
