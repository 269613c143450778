//! `--hdr-log FILE`: each interval's latency histogram (all names together) in HdrHistogram's
//! interval-log format, readable by HdrHistogram's own tools (`HistogramLogProcessor`, the
//! `hdrhistogram` crate's `IntervalLogIterator`). Values are microseconds.

use blast_engine::Snapshot;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

/// An open interval log.
pub struct HdrLog {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    started: SystemTime,
    wrote_header: bool,
}

impl HdrLog {
    /// Creates the file (and missing folders) before the run.
    pub fn create(path: &Path, started: SystemTime) -> io::Result<HdrLog> {
        crate::create_parent(path)?;
        Ok(HdrLog {
            out: BufWriter::new(File::create(path)?),
            serializer: V2DeflateSerializer::new(),
            started,
            wrote_header: false,
        })
    }

    /// Appends one interval.
    pub fn observe(&mut self, snapshot: &Snapshot<'_>) -> io::Result<()> {
        let window = snapshot.window_total;
        let start = snapshot.start;
        let mut builder = IntervalLogWriterBuilder::new();
        // Interval maxima in milliseconds, as HdrHistogram's tools expect for µs histograms.
        builder.with_max_value_divisor(1000.0);
        if !self.wrote_header {
            builder
                .add_comment("blast latency per interval, in microseconds")
                .with_start_time(self.started)
                .with_base_time(self.started);
        }
        let mut text = Vec::new();
        {
            let mut log = builder
                .begin_log_with(&mut text, &mut self.serializer)
                .map_err(io::Error::other)?;
            log.write_histogram(&window.latency_us, start, snapshot.span, Tag::new("all"))
                .map_err(|e| io::Error::other(format!("{e:?}")))?;
        }
        if self.wrote_header {
            // Each builder writes its own header lines; keep only the first log's.
            let body: Vec<&[u8]> = text
                .split_inclusive(|b| *b == b'\n')
                .filter(|l| !l.starts_with(b"#"))
                .collect();
            for line in body {
                self.out.write_all(line)?;
            }
        } else {
            self.out.write_all(&text)?;
            self.wrote_header = true;
        }
        self.out.flush()
    }
}
