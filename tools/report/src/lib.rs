//! blast's result formats, written from the engine's snapshots and report:
//!
//! - [`RunRecord`]: everything a finished run produced; `--json` writes it, `blast report`
//!   reads it back.
//! - [`CsvWriter`]: Locust-compatible `--csv` files, rewritten each second and finished at the end.
//! - [`HdrLog`]: per-interval histograms in HdrHistogram's interval-log format.
//! - [`html`]: the self-contained HTML report, with charts drawn by [`svg`].
//! - [`compare`]: whether new runs differ from base runs beyond their noise.
//! - [`findings`]: a bottleneck analysis computed from the data of one or several runs
//!   ([`Finding`]).
//!
//! ```
//! let record = blast_report::RunRecord::from_json("{}");
//! assert!(record.is_err(), "a record needs its keys");
//! ```
#![deny(missing_docs)]

mod analysis;
mod attribution;
mod bootstrap;
pub mod compare;
mod csv;
pub mod exact;
mod failures;
mod finding;
mod hdrlog;
mod health;
pub mod html;
mod hypotheses;
mod info;
pub mod merge;
mod record;
mod resources;
pub mod svg;
mod time;

pub use analysis::{annotate, failing_text, findings, growth, Finding};
pub use csv::{create_parent, CsvWriter};
pub use failures::{ErrorKind, FailureLog, FailureRow};
pub use finding::Evidence;
pub use hdrlog::HdrLog;
pub use info::RunInfo;
pub use record::{
    mean_rate, ms, percent, ConnectionRecord, CriterionRecord, GeneratorCheck, Latency, MergedFrom,
    NamePoint, NameRecord, PhaseRecord, Point, RunRecord, Sample,
};
pub use time::{parse_time, seconds, unix_seconds, utc_seconds};
