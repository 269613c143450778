//! The run's result files: opened before the run (so an unwritable place fails first), fed
//! once per interval, finished at the end.

use anyhow::Context;
use blast_engine::{Name, Report, Snapshot};
use blast_report::exact::ExactLog;
use blast_report::{CsvWriter, FailureLog, FailureRow, HdrLog, RunRecord, Sample};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::args::OutputArgs;

/// Every output a run writes besides the console.
pub struct Outputs {
    names: Vec<Name>,
    failures: FailureLog,
    csv: Option<CsvWriter>,
    hdr: Option<HdrLog>,
    /// With --json: every interval exactly, for `blast merge` and `blast compare`.
    exact: Option<ExactLog>,
    json: Option<PathBuf>,
    html: Option<PathBuf>,
    /// The first write error met while running; later ones are not repeated.
    warned: bool,
    /// Warnings not shown yet (the run loop prints them between live frames).
    warnings: Vec<String>,
}

impl Outputs {
    /// Creates every requested file now, before any load is sent; the run (or the merged run)
    /// starts at `started`. With --json it keeps every interval for the record.
    pub fn create(
        args: &OutputArgs,
        names: &[Name],
        monitor_keys: &[String],
        started: SystemTime,
    ) -> anyhow::Result<Outputs> {
        let csv = match &args.csv {
            Some(prefix) => Some(
                CsvWriter::create(prefix, args.csv_full_history, names, monitor_keys)
                    .with_context(|| {
                        format!("cannot write the CSV files {}_*.csv", prefix.display())
                    })?,
            ),
            None => None,
        };
        let hdr = match &args.hdr_log {
            Some(path) => Some(
                HdrLog::create(path, started)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            ),
            None => None,
        };
        for path in [&args.json, &args.html].into_iter().flatten() {
            touch(path)?;
        }
        Ok(Outputs {
            names: names.to_vec(),
            failures: FailureLog::default(),
            csv,
            hdr,
            exact: args.json.is_some().then(ExactLog::default),
            json: args.json.clone(),
            html: args.html.clone(),
            warned: false,
            warnings: Vec::new(),
        })
    }

    /// Once per interval, which ended at `now`.
    pub fn observe(&mut self, snapshot: &Snapshot<'_>, sample: &Sample, now: SystemTime) {
        self.failures.observe(snapshot, now);
        if let Some(exact) = &mut self.exact {
            exact.observe(snapshot);
        }
        let mut result = Ok(());
        if let Some(csv) = &mut self.csv {
            let rows = failure_rows(&self.failures, &self.names, snapshot.cumulative, now);
            result = csv.observe(snapshot, now, &rows, sample);
        }
        if let (Some(hdr), Ok(())) = (&mut self.hdr, &result) {
            result = hdr.observe(snapshot);
        }
        if let Err(e) = result {
            if !std::mem::replace(&mut self.warned, true) {
                self.warnings.push(format!("cannot write results while running ({e}); the run goes on and they are written again at the end"));
            }
        }
    }

    /// The warnings of the intervals observed since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The failure rows of the finished run, which ended at `now`.
    pub fn failure_rows(&self, report: &Report, now: SystemTime) -> Vec<FailureRow> {
        let stats: Vec<_> = report.names.iter().map(|n| n.stats.clone()).collect();
        failure_rows(&self.failures, &self.names, &stats, now)
    }

    /// The intervals kept for `blast merge` (with --json), taken out.
    pub fn take_exact(&mut self) -> Option<ExactLog> {
        self.exact.take()
    }

    /// Writes the final versions; every file is attempted even if one fails.
    pub fn finish(&mut self, report: &Report, record: &RunRecord) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        if let Some(csv) = &mut self.csv {
            let stats: Vec<_> = report.names.iter().map(|n| n.stats.clone()).collect();
            if let Err(e) = csv.finish(&stats, report.sending, &record.failure_rows) {
                errors.push(format!("CSV files: {e}"));
            }
        }
        if let Some(path) = &self.json {
            if let Err(e) = std::fs::write(path, record.to_json()) {
                errors.push(format!("{}: {e}", path.display()));
            }
        }
        if let Some(path) = &self.html {
            if let Err(e) = std::fs::write(path, blast_report::html::render(record)) {
                errors.push(format!("{}: {e}", path.display()));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("cannot write results: {}", errors.join("; "))
        }
    }
}

fn failure_rows(
    log: &FailureLog,
    names: &[Name],
    stats: &[blast_engine::Stats],
    now: SystemTime,
) -> Vec<FailureRow> {
    let rows = names
        .iter()
        .zip(stats)
        .map(|(n, s)| (n.method.as_str(), n.name.as_str(), &s.counters));
    log.rows(rows, now)
}

/// Creates `path` (and missing folders) empty, to fail before the run when it cannot be written.
fn touch(path: &Path) -> anyhow::Result<()> {
    blast_report::create_parent(path)
        .with_context(|| format!("cannot create the folder of {}", path.display()))?;
    std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
