//! Rebuilding a run from intervals recorded elsewhere: the shards of a run split over several
//! processes are merged exactly as one process merges its workers.

use std::time::{Duration, SystemTime};

use crate::aggregator::{total, Aggregator, Snapshot};
use crate::connection::{Io, Protocol};
use crate::engine::{NameReport, Report, StreamLimit};
use crate::plan::Shard;
use crate::recorder::Delta;
use crate::schedule::Schedule;
use crate::script::Name;

/// What a replayed run was, besides its intervals.
#[derive(Clone, Debug)]
pub struct RunShape {
    /// Request names, in the script's order.
    pub names: Vec<Name>,
    /// The whole run's schedule.
    pub schedule: Schedule,
    /// The planned run time.
    pub run_time: Duration,
    /// The interval length.
    pub interval: Duration,
    /// Whether the stats were reset at the end of the ramp-up.
    pub reset_stats: bool,
    /// The HTTP version spoken.
    pub protocol: Protocol,
    /// HTTP/2: the streams per connection asked for and what the server allows.
    pub streams: Option<StreamLimit>,
    /// How the sockets sent and received.
    pub io: Io,
}

/// How the replayed run ended: what the sources say together.
#[derive(Clone, Debug)]
pub struct RunEnd {
    /// Wall-clock start of the first interval.
    pub started_at: SystemTime,
    /// How long after `started_at` sending began.
    pub late: Duration,
    /// Until the last source finished.
    pub duration: Duration,
    /// Until sending stopped.
    pub sending: Duration,
    /// Worker threads in all.
    pub workers: usize,
    /// Whether every source pinned its workers.
    pub pinned: bool,
    /// Whether any source was stopped early.
    pub interrupted: bool,
    /// Why the results are incomplete, if they are.
    pub incomplete: Option<String>,
}

/// Feeds recorded intervals through the engine's own merge and builds the [`Report`] a single
/// process would have made.
pub struct Replay {
    shape: RunShape,
    aggregator: Aggregator,
}

impl Replay {
    /// A replay of `sources` processes (each fed as one worker).
    pub fn new(shape: RunShape, sources: usize) -> Replay {
        let mut aggregator = Aggregator::new(
            sources,
            shape.names.len(),
            &shape.schedule,
            shape.run_time,
            shape.interval,
            shape.reset_stats,
        );
        aggregator.protocol = shape.protocol;
        Replay { shape, aggregator }
    }

    /// One source's interval; every interval that became complete is shown to `observer`.
    /// Each source's intervals come in order, its last one marked `last`.
    pub fn feed(&mut self, delta: Delta, observer: &mut dyn FnMut(&Snapshot)) {
        self.aggregator.absorb(delta, observer);
    }

    /// Flushes what is left and returns the whole run's report.
    pub fn finish(self, end: RunEnd, observer: &mut dyn FnMut(&Snapshot)) -> Report {
        let slots = self.aggregator.slots;
        let (cumulative, history, phases) = self.aggregator.finish(observer);
        Report {
            started_at: end.started_at,
            late: end.late,
            duration: end.duration,
            sending: end.sending,
            run_time: self.shape.run_time,
            interval: self.shape.interval,
            reset_stats: self.shape.reset_stats,
            total: total(&cumulative),
            names: NameReport::zip(&self.shape.names, cumulative),
            history,
            schedule: self.shape.schedule,
            workers: end.workers,
            pinned: end.pinned,
            shard: Shard::default(),
            interrupted: end.interrupted,
            slots,
            phases,
            incomplete: end.incomplete,
            protocol: self.shape.protocol,
            streams: self.shape.streams,
            io: self.shape.io,
            io_fallback: None,
        }
    }
}
