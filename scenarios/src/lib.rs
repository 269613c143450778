//! What blast's users do: scenarios (Locust-style user classes with weighted tasks), scenario
//! files, load shapes and success criteria. Knows nothing of sockets:
//! a [`Scenario`] becomes the engine's [`blast_engine::Script`] through [`Scenario::script`].
//!
//! - [`Scenario`]: user classes, each with a [`WaitTime`], on-start requests (a login) and
//!   weighted tasks; requests are templates with captures, generators and shared pools.
//! - [`parse`] reads a scenario file.
//! - [`Load`] is a load shape as users write it (`-u/-r/-t`, stages, rates), resolved into an
//!   engine schedule.
//! - [`Criterion`] is one success criterion, evaluated against the engine's report.
//!
//! ```
//! let scenario = blast_scenarios::parse("example", r#"
//! name = "example"
//! [load]
//! stages = "1m:100, 2m:100, 1m:0"
//! [[user]]
//! class = "Reader"
//! [[user.task]]
//! request = "GET /items/"
//! "#).unwrap();
//! let (schedule, run_time) = scenario.load.resolve(Some(1000.0), 1000).unwrap();
//! assert_eq!(run_time.as_secs(), 240);
//! # let _ = schedule;
//! ```
#![deny(missing_docs)]

mod capture;
mod criteria;
mod error;
mod file;
mod load;
mod model;
mod pool;
mod template;
mod user;

pub use criteria::{Criterion, Verdict};
pub use error::ScenarioError;
pub use file::{parse, read};
pub use load::{parse_duration, parse_rate, parse_stages, Load, DEFAULT_RUN_TIME, DEFAULT_USERS};
pub use model::{Scenario, WaitTime};
pub use pool::PoolCounts;
pub use template::fnv1a;
pub use user::ScenarioScript;
