//! Measures the per-response cost of recording stats: one HDR histogram record (closed model)
//! or two (open model, latency and service time), and merging a worker's interval into the
//! aggregator's cumulative view.
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use blast_engine::Stats;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn record(c: &mut Criterion) {
    let latencies: Vec<Duration> = (0..1024u64)
        .map(|i| Duration::from_micros(50 + (i * 7919) % 20_000))
        .collect();
    let mut closed = Stats::new(false);
    let mut i = 0;
    c.bench_function("stats_record_closed", |b| {
        b.iter(|| {
            i = (i + 1) % latencies.len();
            closed.record(black_box(latencies[i]), Duration::ZERO);
        })
    });
    let mut open = Stats::new(true);
    c.bench_function("stats_record_open", |b| {
        b.iter(|| {
            i = (i + 1) % latencies.len();
            open.record(black_box(latencies[i]), black_box(latencies[i] / 2));
        })
    });
    let mut interval = Stats::new(true);
    for d in &latencies {
        interval.record(*d, *d / 2);
    }
    let mut cumulative = Stats::new(true);
    c.bench_function("stats_merge_interval", |b| {
        b.iter(|| cumulative.add(black_box(&interval)))
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
