//! blast's load engine: drives HTTP/1.1 traffic and measures it.
//!
//! - [`Plan`] says what to send (a [`Script`] of users, such as fixed [`Requests`], to a
//!   [`Target`]) and how ([`Schedule::Closed`] users or a [`Schedule::Open`] arrival rate, each
//!   following a [`Shape`] over time), for how long.
//! - [`Engine`] runs it: one pinned OS thread per core, each with its own current-thread tokio
//!   runtime, keep-alive connections and HDR histograms; stats travel once per interval.
//! - [`Report`] holds the cumulative [`Stats`] per name and the interval history.
//! - [`redact`] keeps credentials out of everything a run writes or shows.
//!
//! ```no_run
//! use blast_engine::{Engine, Plan, RequestTemplate, Requests, Schedule, Target};
//!
//! let (target, uri) = Target::parse("http://127.0.0.1:8080/").unwrap();
//! let get = RequestTemplate::new(&target, "GET", uri.path(), &[], Default::default()).unwrap();
//! let plan = Plan::new(target, Requests::new(vec![get]), Schedule::users(64));
//! let report = Engine::new(plan).unwrap().run(|_| {}).unwrap();
//! println!("{:.0} requests/s", report.rps());
//! ```
#![deny(missing_docs)]

mod aggregator;
mod connection;
mod control;
pub mod deadline;
mod engine;
mod error;
mod plan;
mod recorder;
pub mod redact;
mod redirect;
mod replay;
mod request;
mod schedule;
mod script;
mod stats;
mod worker;

pub use aggregator::{IntervalSummary, NameInterval, PhaseReport, Snapshot};
pub use connection::{Client, Io, Protocol, TlsOptions};
pub use control::RunHandle;
pub use engine::{Engine, NameReport, Report, StreamLimit};
pub use error::EngineError;
pub use plan::{available_cores, Plan, Shard};
pub use recorder::Delta;
pub use redirect::{Redirect, MAX_REDIRECTS};
pub use replay::{Replay, RunEnd, RunShape};
pub use request::{RequestTemplate, Target};
pub use schedule::{PhaseKind, Schedule, Shape, Stage};
pub use script::{Action, Name, Reply, Requests, Script, User, UserId, MAX_KEPT_BODY};
pub use stats::{new_histogram, Counters, FailureClass, Stats, CLASSES, MAX_REASONS};
pub use worker::LATE_AFTER;

/// Entry points for `cargo fuzz` (`fuzz/`), built only with `--cfg fuzzing`.
#[cfg(fuzzing)]
pub mod fuzzing {
    pub use crate::connection::raw::exchange as http_response;
}
