//! `blast merge`: the shards of one run, checked against each other and replayed through the
//! engine's own merge, so the merged run is the run one process would have recorded.

use blast_engine::{Name, Replay, Report, RunEnd, RunShape, Snapshot};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::exact::{ExactRun, FORMAT};
use crate::info::RunInfo;
use crate::record::{MergedFrom, RunRecord, Sample};

/// The records of one run's shards, checked to belong together.
pub struct Shards {
    /// (file, record), in shard order; every record has shard data.
    parts: Vec<(String, RunRecord)>,
    /// Per part: how many intervals after the earliest shard's first it started, and by how
    /// much time.
    shifts: Vec<(u64, Duration)>,
    started_at: SystemTime,
}

/// What every shard record holds whoever wrote it: records are untrusted input, and what the
/// merge relies on is checked before it does.
fn consistent(d: &ExactRun, names: usize) -> Result<(), String> {
    if d.count == 0 || d.index == 0 || d.index > d.count {
        return Err(format!("it says it is shard {}/{}", d.index, d.count));
    }
    if d.interval_ns == 0 || d.run_time_ns == 0 {
        return Err("its interval or run time is zero".into());
    }
    if let Some(i) = d.intervals.iter().position(|iv| iv.names.len() != names) {
        return Err(format!(
            "interval {} has {} names where the run has {names}",
            i + 1,
            d.intervals[i].names.len()
        ));
    }
    Ok(())
}

fn data(record: &RunRecord) -> &ExactRun {
    record.exact.as_ref().expect("checked in Shards::new")
}

impl Shards {
    /// Checks that `records` (file name, record) are distinct shards of one run; the error is
    /// one line that names the files.
    pub fn new(records: Vec<(String, RunRecord)>) -> Result<Shards, String> {
        if records.is_empty() {
            return Err("no records to merge".into());
        }
        for (file, r) in &records {
            match &r.exact {
                None => return Err(format!("{file} has no exact data (`exact`): records written before blast 2026-12-06 kept it only for --shard runs")),
                Some(d) if d.format != FORMAT => return Err(format!("{file} has exact data of format {}; this blast reads format {FORMAT}", d.format)),
                Some(d) => consistent(d, r.names_list().len())
                    .map_err(|why| format!("{file} is not a consistent shard record: {why}"))?,
            }
        }
        let mut parts = records;
        parts.sort_by_key(|(_, r)| data(r).index);
        let (first_file, first) = &parts[0];
        let a = data(first);
        for (file, r) in &parts[1..] {
            let b = data(r);
            let differ = |what: &str| {
                Err(format!(
                    "{first_file} and {file} are not shards of one run: {what}"
                ))
            };
            if b.run_id != a.run_id {
                return differ(&format!("their run ids are {} and {} (the shards of one run share --run-id, or --start-at)", a.run_id, b.run_id));
            }
            if b.scenario_digest != a.scenario_digest || r.names_list() != first.names_list() {
                return differ("they ran different scenarios");
            }
            if b.schedule != a.schedule
                || b.run_time_ns != a.run_time_ns
                || b.interval_ns != a.interval_ns
                || b.reset_stats != a.reset_stats
            {
                return differ(
                    "they ran different loads (users, rate, stages, run time or interval)",
                );
            }
            if b.criteria != a.criteria {
                return differ("they judged different criteria");
            }
            if b.count != a.count {
                return differ(&format!(
                    "one is of {} shards, the other of {}",
                    a.count, b.count
                ));
            }
        }
        for pair in parts.windows(2) {
            if data(&pair[0].1).index == data(&pair[1].1).index {
                return Err(format!(
                    "{} and {} are both shard {}/{}: give each shard once",
                    pair[0].0,
                    pair[1].0,
                    data(&pair[0].1).index,
                    data(&pair[0].1).count
                ));
            }
        }
        let start = |r: &RunRecord| UNIX_EPOCH + Duration::from_nanos(data(r).started_at_ns);
        let started_at = parts
            .iter()
            .map(|(_, r)| start(r))
            .min()
            .expect("not empty");
        let interval = Duration::from_nanos(a.interval_ns).max(Duration::from_nanos(1));
        let shifts = parts
            .iter()
            .map(|(_, r)| {
                let offset = start(r).duration_since(started_at).unwrap_or_default();
                let ticks = (offset.as_secs_f64() / interval.as_secs_f64()).round() as u64;
                (ticks, offset)
            })
            .collect();
        Ok(Shards {
            parts,
            shifts,
            started_at,
        })
    }

    /// The first shard's exact data: its scenario, load and interval are every shard's.
    pub fn first(&self) -> &ExactRun {
        data(&self.parts[0].1)
    }

    /// Which shards were given and which are missing.
    pub fn merged_from(&self) -> MergedFrom {
        let count = self.first().count;
        let shards: Vec<usize> = self.parts.iter().map(|(_, r)| data(r).index).collect();
        MergedFrom {
            missing: (1..=count).filter(|i| !shards.contains(i)).collect(),
            shards,
            count,
        }
    }

    /// The request names, in the script's order.
    pub fn names(&self) -> Vec<Name> {
        self.parts[0].1.names_list()
    }

    /// What ran against what, as the shards' records say.
    pub fn label(&self) -> String {
        self.parts[0].1.target.clone()
    }

    /// Wall-clock start of the merged run's first interval.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// The criteria the shards judged themselves by, as written.
    pub fn criteria(&self) -> &[String] {
        &self.first().criteria
    }

    /// Every monitored value any shard recorded.
    pub fn monitor_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .parts
            .iter()
            .flat_map(|(_, r)| r.history.iter().flat_map(|p| p.sample.monitor.keys()))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// What the merged record says about the run besides its numbers: the first shard's
    /// command, host and scenario, and the shards' cores together (when each says).
    pub fn info(&self) -> RunInfo {
        let r = &self.parts[0].1;
        let cores = self
            .parts
            .iter()
            .map(|(_, r)| r.cores)
            .sum::<Option<usize>>();
        RunInfo {
            command: r.command.clone(),
            host: r.host.clone(),
            profile: r.profile.clone(),
            scenario: r.scenario.clone(),
            start_at: None,
            run_id: self.first().run_id.clone(),
            scenario_digest: self.first().scenario_digest.clone(),
            scenario_source: self.first().scenario_source.clone(),
            cores,
        }
    }

    /// Feeds every shard's intervals, tick by tick, through the engine's merge. `observer`
    /// sees each merged interval with the shards' samples combined (the highest of each
    /// value: the busiest shard's worker, the largest lag). Returns the merged report and the
    /// samples in the order of its history.
    pub fn replay(
        &self,
        observer: &mut dyn FnMut(&Snapshot, &Sample),
    ) -> Result<(Report, Vec<Sample>), String> {
        let a = self.first();
        let shape = RunShape {
            names: self.names(),
            schedule: a.schedule.clone(),
            run_time: Duration::from_nanos(a.run_time_ns),
            interval: Duration::from_nanos(a.interval_ns),
            reset_stats: a.reset_stats,
            protocol: self.parts[0].1.protocol,
            streams: self.parts[0].1.streams,
            io: self.parts[0].1.io,
        };
        let mut replay = Replay::new(shape, self.parts.len());
        // Samples by merged tick; a snapshot's tick is its place in the history.
        let mut by_tick: BTreeMap<u64, Sample> = BTreeMap::new();
        for ((_, r), (shift, _)) in self.parts.iter().zip(&self.shifts) {
            for (i, p) in r.history.iter().enumerate() {
                combine(by_tick.entry(shift + i as u64).or_default(), &p.sample);
            }
        }
        let mut samples = Vec::new();
        let mut show = |s: &Snapshot| {
            let tick = samples.len() as u64;
            let sample = by_tick.remove(&tick).unwrap_or_default();
            observer(s, &sample);
            samples.push(sample);
        };
        let ticks = self
            .parts
            .iter()
            .zip(&self.shifts)
            .map(|((_, r), (shift, _))| shift + data(r).intervals.len() as u64)
            .max()
            .unwrap_or(0);
        for tick in 0..ticks {
            for (worker, ((file, r), (shift, offset))) in
                self.parts.iter().zip(&self.shifts).enumerate()
            {
                let Some(i) = tick.checked_sub(*shift) else {
                    continue;
                };
                if i as usize >= data(r).intervals.len() {
                    continue;
                }
                let delta = data(r)
                    .delta(i as usize, worker, *shift, *offset)
                    .map_err(|e| format!("{file}: {e}"))?;
                replay.feed(delta, &mut show);
            }
        }
        let end = self.end();
        let report = replay.finish(end, &mut show);
        self.check_totals(&report)?;
        Ok((report, samples))
    }

    /// How the merged run ended: the latest end and stop of any shard, every worker.
    fn end(&self) -> RunEnd {
        let shards: Vec<(Duration, &ExactRun)> = self
            .parts
            .iter()
            .zip(&self.shifts)
            .map(|((_, r), (_, offset))| (*offset, data(r)))
            .collect();
        let across = |f: fn(&ExactRun) -> u64| {
            shards
                .iter()
                .map(move |(offset, d)| *offset + Duration::from_nanos(f(d)))
        };
        let missing = self.merged_from().missing;
        let incomplete = self
            .parts
            .iter()
            .find_map(|(file, r)| r.incomplete.as_ref().map(|why| format!("{file}: {why}")))
            .or_else(|| {
                (!missing.is_empty()).then(|| {
                    let list: Vec<String> = missing.iter().map(usize::to_string).collect();
                    format!(
                        "shard {} of {} missing",
                        list.join(", "),
                        self.first().count
                    )
                })
            });
        RunEnd {
            started_at: self.started_at,
            late: across(|d| d.late_ns).min().unwrap_or_default(),
            duration: across(|d| d.duration_ns).max().unwrap_or_default(),
            sending: across(|d| d.sending_ns).max().unwrap_or_default(),
            workers: self.parts.iter().map(|(_, r)| r.threads).sum(),
            pinned: self.parts.iter().all(|(_, r)| r.pinned),
            interrupted: self.parts.iter().any(|(_, r)| r.interrupted),
            incomplete,
        }
    }

    /// The replayed intervals must add up, name by name, to the cumulative stats each shard
    /// kept: a record whose intervals were edited or cut is refused rather than merged wrong.
    fn check_totals(&self, report: &Report) -> Result<(), String> {
        if self.first().reset_stats {
            // The cumulative stats then start at the reset, the intervals before it.
            return Ok(());
        }
        for (i, merged) in report.names.iter().enumerate() {
            let counted: u64 = self
                .parts
                .iter()
                .map(|(_, r)| data(r).names.get(i).map_or(0, |n| n.counters.requests()))
                .sum();
            let replayed = merged.stats.counters.requests();
            if counted != replayed {
                return Err(format!(
                    "the shards' intervals add up to {replayed} requests of {} {}, but their records count {counted}: a record was changed or cut",
                    merged.name.method, merged.name.name
                ));
            }
        }
        Ok(())
    }
}

/// Folds one shard's sample into the merged one: the highest of each value.
fn combine(into: &mut Sample, s: &Sample) {
    let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    into.worker_cpu_pct = max(into.worker_cpu_pct, s.worker_cpu_pct);
    into.loop_lag_ms = into.loop_lag_ms.max(s.loop_lag_ms);
    into.run_queue_ms = max(into.run_queue_ms, s.run_queue_ms);
    into.steal_pct = max(into.steal_pct, s.steal_pct);
    for (k, v) in &s.monitor {
        let e = into.monitor.entry(k.clone()).or_insert(*v);
        *e = e.max(*v);
    }
}
