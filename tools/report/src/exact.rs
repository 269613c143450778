//! What a record carries for an exact merge across processes (`blast merge`): every
//! interval's histograms (HdrHistogram V2, deflated, base64) and counters, per request name,
//! with the run's shape and criteria. Format described in `docs/outputs.md`, versioned by
//! [`FORMAT`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use blast_engine::{new_histogram, Counters, Delta, Report, Schedule, Snapshot, Stats};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::{Duration, UNIX_EPOCH};

use crate::info::RunInfo;

/// The version of the shard data this blast writes and reads.
pub const FORMAT: u32 = 1;

/// One request name's stats over some span, exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExactStats {
    /// Latency in microseconds, failures included.
    pub latency: String,
    /// The failed requests' part of `latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Open model: service time in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Every count.
    pub counters: Counters,
}

/// One interval of a shard, as its aggregator reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExactInterval {
    /// Start and end from the shard's `started_at`, in nanoseconds.
    pub span_ns: (u64, u64),
    /// Users running at its end (open model: connections).
    pub users: u64,
    /// The busiest worker's event-loop lag, in microseconds.
    pub loop_lag_us: u64,
    /// Open model: slots due and not sent at its end.
    pub backlog: u64,
    /// Per request name, in the order of the record's `names`.
    pub names: Vec<ExactStats>,
}

/// Everything `blast merge` needs from one shard's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExactRun {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The same for every shard of one run (`--run-id`, or derived from `--start-at`).
    pub run_id: String,
    /// Which shard this is, from 1.
    pub index: usize,
    /// Shards in the run.
    pub count: usize,
    /// FNV-1a of the scenario's source and the tags selected (or of the URL's request).
    pub scenario_digest: String,
    /// The scenario file or profile as written; absent for a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_source: Option<String>,
    /// The criteria the run judged itself by, as written.
    pub criteria: Vec<String>,
    /// The whole run's schedule (not this shard's share).
    pub schedule: Schedule,
    /// The planned run time, in nanoseconds.
    pub run_time_ns: u64,
    /// The interval length, in nanoseconds.
    pub interval_ns: u64,
    /// The stats were reset at the end of the ramp-up (`--reset-stats`).
    pub reset_stats: bool,
    /// Wall-clock start of the first interval, in nanoseconds since the Unix epoch.
    pub started_at_ns: u64,
    /// How long after that sending began, in nanoseconds.
    pub late_ns: u64,
    /// Until the last worker finished, in nanoseconds.
    pub duration_ns: u64,
    /// Until sending stopped, in nanoseconds.
    pub sending_ns: u64,
    /// Open model: slots due while sending, and those never sent.
    pub slots: (u64, u64),
    /// Cumulative stats per request name; `blast merge` checks the intervals add up to them.
    pub names: Vec<ExactStats>,
    /// Every interval, in order; the record's `history` has one point for each.
    pub intervals: Vec<ExactInterval>,
}

impl ExactStats {
    /// `stats`, encoded.
    pub fn of(stats: &Stats) -> ExactStats {
        ExactStats {
            latency: encode(&stats.latency_us),
            failed: stats.failed_us.as_ref().map(encode),
            service: stats.service_us.as_ref().map(encode),
            counters: stats.counters.clone(),
        }
    }

    /// The stats back, or why they cannot be read.
    pub fn decode(&self) -> Result<Stats, String> {
        Ok(Stats {
            latency_us: decode(&self.latency)?,
            failed_us: self.failed.as_deref().map(decode).transpose()?,
            service_us: self.service.as_deref().map(decode).transpose()?,
            counters: self.counters.clone(),
        })
    }
}

/// Encodes each interval as the run goes; memory grows with intervals × names only.
#[derive(Default)]
pub struct ExactLog {
    intervals: Vec<ExactInterval>,
}

impl ExactLog {
    /// Once per interval.
    pub fn observe(&mut self, snapshot: &Snapshot<'_>) {
        let ns = |d: Duration| d.as_nanos() as u64;
        self.intervals.push(ExactInterval {
            span_ns: (ns(snapshot.start), ns(snapshot.elapsed)),
            users: snapshot.users,
            loop_lag_us: snapshot.loop_lag_us,
            backlog: snapshot.backlog,
            names: snapshot.window.iter().map(ExactStats::of).collect(),
        });
    }
}

impl ExactRun {
    /// The shard data of a finished run whose intervals `log` kept.
    pub fn new(report: &Report, info: &RunInfo, criteria: Vec<String>, log: ExactLog) -> ExactRun {
        let ns = |d: Duration| d.as_nanos() as u64;
        ExactRun {
            format: FORMAT,
            run_id: info.run_id.clone(),
            index: report.shard.index + 1,
            count: report.shard.count,
            scenario_digest: info.scenario_digest.clone(),
            scenario_source: info.scenario_source.clone(),
            criteria,
            schedule: report.schedule.clone(),
            run_time_ns: ns(report.run_time),
            interval_ns: ns(report.interval),
            reset_stats: report.reset_stats,
            started_at_ns: ns(report
                .started_at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()),
            late_ns: ns(report.late),
            duration_ns: ns(report.duration),
            sending_ns: ns(report.sending),
            slots: report.slots,
            names: report
                .names
                .iter()
                .map(|n| ExactStats::of(&n.stats))
                .collect(),
            intervals: log.intervals,
        }
    }

    /// Interval `i` as a replay's delta from source `worker`: its tick moved by `shift`
    /// intervals and its span by `offset`; the shard's last interval is marked so.
    pub fn delta(
        &self,
        i: usize,
        worker: usize,
        shift: u64,
        offset: Duration,
    ) -> Result<Delta, String> {
        let iv = &self.intervals[i];
        let last = i + 1 == self.intervals.len();
        Ok(Delta {
            worker,
            tick: shift + i as u64,
            span: (
                offset + Duration::from_nanos(iv.span_ns.0),
                offset + Duration::from_nanos(iv.span_ns.1),
            ),
            names: iv
                .names
                .iter()
                .map(ExactStats::decode)
                .collect::<Result<_, _>>()?,
            users: iv.users,
            // Not kept: a replayed run has nothing in flight to show.
            in_flight: 0,
            // The aggregator reads the backlog from the second count, and the run's slots
            // from the last delta.
            slots: if last { self.slots } else { (0, iv.backlog) },
            lag_max_us: iv.loop_lag_us,
            last,
        })
    }
}

fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into memory cannot fail");
    STANDARD.encode(bytes)
}

fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("a histogram is not base64 ({e})"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("a histogram cannot be read ({e:?})"))?;
    let want = new_histogram();
    // Merging adds histograms bucket by bucket: they must be laid out as blast's are (from
    // 1 µs, 3 figures; the range grows with the values, up to an hour).
    if (h.low(), h.sigfig()) != (want.low(), want.sigfig()) || h.high() > 3_600_000_000 * 2 {
        return Err(format!(
            "a histogram has bounds {}..{} with {} figures, not blast's {}..(1 h) with {}",
            h.low(),
            h.high(),
            h.sigfig(),
            want.low(),
            want.sigfig()
        ));
    }
    let mut h = h;
    h.auto(true);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_survive_encoding_exactly() {
        let mut s = Stats::new(true);
        for ms in [1, 2, 3, 250, 1_000, 30_000] {
            s.record(Duration::from_millis(ms), Duration::from_millis(ms / 2));
            s.counters.ok += 1;
        }
        s.record_failed(Duration::from_secs(5), Duration::from_secs(5));
        s.counters
            .fail_because(blast_engine::FailureClass::Tls, "bad certificate");
        s.counters.failed_statuses.insert(503, 2);
        let json = serde_json::to_string(&ExactStats::of(&s)).unwrap();
        let back: ExactStats = serde_json::from_str(&json).unwrap();
        let back = back.decode().unwrap();
        assert_eq!(back.latency_us, s.latency_us);
        assert_eq!(back.failed_us, s.failed_us);
        assert_eq!(back.service_us, s.service_us);
        assert_eq!(back.counters, s.counters);
    }

    #[test]
    fn a_histogram_of_other_bounds_is_refused() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        h.record(5).unwrap();
        let err = decode(&encode(&h)).unwrap_err();
        assert!(err.contains("bounds 1..1000 with 2 figures"), "{err}");
        assert!(decode("not base64!").unwrap_err().contains("base64"));
    }
}
