//! Locust-compatible CSV files (`--csv PREFIX`): `_stats.csv`, `_stats_history.csv`,
//! `_failures.csv` and `_exceptions.csv`, with Locust 2.47's headers, row order, `Aggregated`
//! row and CRLF line endings. Differences from Locust are listed in `docs/outputs.md`.
//! What Locust's files have no columns for (the generator's own CPU and loop lag, whether it
//! was saturated, monitored values) goes into a fifth file, `_blast_history.csv`.

use blast_engine::{Name, Snapshot, Stats};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::failures::FailureRow;
use crate::record::{ms, Sample};
use crate::time::unix_seconds;

const STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";
const HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size";
const FAILURES_HEADER: &str = "Method,Name,Error,Occurrences,First Seen,Last Seen";
const EXCEPTIONS_HEADER: &str = "Count,Message,Traceback,Nodes";
/// blast's own per-second columns; monitored values follow, one column each.
const BLAST_HEADER: &str = "Timestamp,Elapsed (s),User Count,Requests/s,Failures/s,Generator CPU % (busiest worker),Event Loop Lag (ms),Generator Saturated,Interval (s),Run Queue Wait (ms),Generator Stalled,Slots Behind,Protocol";

/// `PREFIX_KIND.csv`.
fn suffixed(prefix: &Path, kind: &str) -> PathBuf {
    let mut name = prefix.file_name().unwrap_or_default().to_os_string();
    name.push(format!("_{kind}.csv"));
    prefix.with_file_name(name)
}

/// Creates the missing folders above `path`.
pub fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// Locust's percentile columns.
const QUANTILES: [f64; 11] = [
    0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// Writes the four files of one run.
pub struct CsvWriter {
    prefix: PathBuf,
    full_history: bool,
    names: Vec<Name>,
    history: File,
    blast_history: File,
    monitor_keys: Vec<String>,
}

/// Locust's four file names for `prefix`.
fn paths(prefix: &Path) -> [PathBuf; 4] {
    ["stats", "stats_history", "failures", "exceptions"].map(|kind| suffixed(prefix, kind))
}

impl CsvWriter {
    /// Creates missing folders and the four files with their headers, before the run, so an
    /// unwritable place is an error before any load is sent.
    pub fn create(
        prefix: &Path,
        full_history: bool,
        names: &[Name],
        monitor_keys: &[String],
    ) -> io::Result<CsvWriter> {
        create_parent(prefix)?;
        let [stats, history, failures, exceptions] = paths(prefix);
        replace(&stats, &[STATS_HEADER])?;
        replace(&failures, &[FAILURES_HEADER])?;
        replace(&exceptions, &[EXCEPTIONS_HEADER])?;
        let mut file = File::create(&history)?;
        write!(file, "{HISTORY_HEADER}\r\n")?;
        let mut blast = File::create(suffixed(prefix, "blast_history"))?;
        let mut header = BLAST_HEADER.to_string();
        if !monitor_keys.is_empty() {
            header.push(',');
            header.push_str(&record(monitor_keys));
        }
        write!(blast, "{header}\r\n")?;
        Ok(CsvWriter {
            prefix: prefix.to_path_buf(),
            full_history,
            names: names.to_vec(),
            history: OpenOptions::new().append(true).open(history)?,
            blast_history: blast,
            monitor_keys: monitor_keys.to_vec(),
        })
    }

    /// Once per interval: rewrites the stats and failures files, appends to the history.
    pub fn observe(
        &mut self,
        snapshot: &Snapshot<'_>,
        now: SystemTime,
        failures: &[FailureRow],
        sample: &Sample,
    ) -> io::Result<()> {
        self.write_snapshot(snapshot.cumulative, snapshot.elapsed, failures)?;
        self.write_blast_row(snapshot, now, sample)?;
        let total_window = snapshot.window_total;
        let total = snapshot.cumulative_total;
        let mut lines = Vec::new();
        let stamp = unix_seconds(now);
        let span = snapshot.span;
        if self.full_history {
            for (i, name) in self.sorted() {
                let (window, cumulative) = (&snapshot.window[i], &snapshot.cumulative[i]);
                lines.push(history_row(
                    stamp,
                    snapshot.users,
                    name,
                    window,
                    window,
                    cumulative,
                    span,
                ));
            }
        }
        let aggregated = Name {
            method: String::new(),
            name: "Aggregated".into(),
        };
        // Locust's history percentiles are whole-run unless full history is asked for.
        let shown = if self.full_history {
            total_window
        } else {
            total
        };
        lines.push(history_row(
            stamp,
            snapshot.users,
            &aggregated,
            total_window,
            shown,
            total,
            span,
        ));
        for line in lines {
            write!(self.history, "{line}\r\n")?;
        }
        self.history.flush()
    }

    /// At the end: the stats and failures files from the final, complete stats, so they agree
    /// with the summary (Locust never writes this last version).
    pub fn finish(
        &mut self,
        names: &[Stats],
        duration: Duration,
        failures: &[FailureRow],
    ) -> io::Result<()> {
        self.write_snapshot(names, duration, failures)
    }

    fn write_blast_row(
        &mut self,
        snapshot: &Snapshot<'_>,
        now: SystemTime,
        sample: &Sample,
    ) -> io::Result<()> {
        let window = snapshot.window_total;
        let secs = snapshot.span.as_secs_f64().max(1e-9);
        let mut cols = vec![
            unix_seconds(now).to_string(),
            format!("{:.3}", snapshot.elapsed.as_secs_f64()),
            snapshot.users.to_string(),
            format!("{:.6}", window.counters.requests() as f64 / secs),
            format!("{:.6}", window.counters.failed() as f64 / secs),
            sample
                .worker_cpu_pct
                .map_or(String::new(), |c| format!("{c:.1}")),
            format!("{:.3}", sample.loop_lag_ms),
            u8::from(sample.saturated()).to_string(),
            format!("{:.3}", snapshot.span.as_secs_f64()),
            sample
                .run_queue_ms
                .map_or(String::new(), |q| format!("{q:.3}")),
            u8::from(sample.stalled()).to_string(),
            snapshot.backlog.to_string(),
            snapshot.protocol.as_str().to_string(),
        ];
        for key in &self.monitor_keys {
            cols.push(
                sample
                    .monitor
                    .get(key)
                    .map_or(String::new(), |v| format!("{v}")),
            );
        }
        write!(self.blast_history, "{}\r\n", record(&cols))?;
        self.blast_history.flush()
    }

    fn sorted(&self) -> Vec<(usize, &Name)> {
        let mut order: Vec<(usize, &Name)> = self.names.iter().enumerate().collect();
        // Locust sorts by name, then method.
        order.sort_by(|a, b| (&a.1.name, &a.1.method).cmp(&(&b.1.name, &b.1.method)));
        order
    }

    fn write_snapshot(
        &self,
        cumulative: &[Stats],
        elapsed: Duration,
        failures: &[FailureRow],
    ) -> io::Result<()> {
        let [stats_path, _, failures_path, _] = paths(&self.prefix);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut rows = vec![STATS_HEADER.to_string()];
        let mut total = Stats::new(false);
        for (i, name) in self.sorted() {
            rows.push(stats_row(&name.method, &name.name, &cumulative[i], secs));
            total.add(&cumulative[i]);
        }
        rows.push(stats_row("", "Aggregated", &total, secs));
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        replace(&stats_path, &refs)?;
        let mut rows = vec![FAILURES_HEADER.to_string()];
        rows.extend(failures.iter().map(|f| {
            record(&[
                f.method.clone(),
                f.name.clone(),
                f.error.clone(),
                f.occurrences.to_string(),
                f.first_seen.clone(),
                f.last_seen.clone(),
            ])
        }));
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        replace(&failures_path, &refs)
    }
}

/// One `_stats.csv` row.
fn stats_row(method: &str, name: &str, s: &Stats, secs: f64) -> String {
    let c = &s.counters;
    let h = &s.latency_us;
    let n = c.requests();
    let mut cols = vec![
        method.to_string(),
        name.to_string(),
        n.to_string(),
        c.failed().to_string(),
    ];
    cols.extend(time_columns(h));
    cols.push(format!("{}", c.body_bytes as f64 / n.max(1) as f64));
    cols.push(format!("{}", n as f64 / secs));
    cols.push(format!("{}", c.failed() as f64 / secs));
    cols.extend(percentile_columns(s));
    record(&cols)
}

/// One `_stats_history.csv` row: rates from `window`, percentiles from `shown`, totals from
/// `total`.
fn history_row(
    stamp: u64,
    users: u64,
    name: &Name,
    window: &Stats,
    shown: &Stats,
    total: &Stats,
    span: Duration,
) -> String {
    let secs = span.as_secs_f64().max(1e-9);
    let w = &window.counters;
    let t = &total.counters;
    let h = &total.latency_us;
    let mut cols = vec![
        stamp.to_string(),
        users.to_string(),
        name.method.clone(),
        name.name.clone(),
        format!("{:.6}", w.requests() as f64 / secs),
        format!("{:.6}", w.failed() as f64 / secs),
    ];
    cols.extend(percentile_columns(shown));
    cols.push(t.requests().to_string());
    cols.push(t.failed().to_string());
    cols.extend(time_columns(h));
    cols.push(format!(
        "{}",
        t.body_bytes as f64 / t.requests().max(1) as f64
    ));
    record(&cols)
}

/// Median, average, min and max response time, as Locust writes them for no requests.
fn time_columns(h: &hdrhistogram::Histogram<u64>) -> [String; 4] {
    if h.is_empty() {
        return ["0", "0.0", "0", "0"].map(String::from);
    }
    [
        time(h.value_at_quantile(0.5)),
        format!("{}", h.mean() / 1000.0),
        time(h.min()),
        time(h.max()),
    ]
}

fn percentile_columns(s: &Stats) -> Vec<String> {
    let h = &s.latency_us;
    QUANTILES
        .iter()
        .map(|&q| {
            if h.is_empty() {
                "N/A".to_string()
            } else if q == 1.0 {
                time(h.max())
            } else {
                time(h.value_at_quantile(q))
            }
        })
        .collect()
}

/// Milliseconds with microsecond precision, as short as exact: `2`, `0.705`, `12.3`.
fn time(us: u64) -> String {
    format!("{}", ms(us))
}

/// One CSV record, without its line end: the `csv` crate quotes what needs it (a comma, a
/// quote, a line break), as Python's csv module does for Locust.
fn record(fields: &[String]) -> String {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = out.write_record(fields);
    let bytes = out.into_inner().unwrap_or_default();
    String::from_utf8_lossy(bytes.strip_suffix(b"\n").unwrap_or(&bytes)).into_owned()
}

/// Writes `lines` with CRLF to a temporary file and renames it over `path`, so a reader never
/// sees a half-written file.
fn replace(path: &Path, lines: &[&str]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_equal_locust_2_47() {
        // Real output of Locust 2.47.0 (see docs/outputs.md), kept as test fixtures.
        let reference = "tests/fixtures/locust-2.47.0";
        for (file, header) in [
            ("locmix_stats.csv", STATS_HEADER),
            ("locmix_stats_history.csv", HISTORY_HEADER),
            ("locmix_failures.csv", FAILURES_HEADER),
            ("locmix_exceptions.csv", EXCEPTIONS_HEADER),
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(reference)
                .join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.split("\r\n").next(), Some(header), "{file}");
        }
    }

    #[test]
    fn fields_are_quoted_as_csv_needs() {
        let fields = [
            "/a",
            "ConnectionRefusedError(111, 'x')",
            "say \"hi\"",
            "two\nlines",
        ]
        .map(String::from);
        assert_eq!(
            record(&fields),
            "/a,\"ConnectionRefusedError(111, 'x')\",\"say \"\"hi\"\"\",\"two\nlines\""
        );
        assert_eq!(time(705), "0.705");
        assert_eq!(time(2000), "2");
    }

    #[test]
    fn paths_append_locust_suffixes() {
        let [s, h, f, e] = paths(Path::new("results/test"));
        assert_eq!(s, Path::new("results/test_stats.csv"));
        assert_eq!(h, Path::new("results/test_stats_history.csv"));
        assert_eq!(f, Path::new("results/test_failures.csv"));
        assert_eq!(e, Path::new("results/test_exceptions.csv"));
    }
}
