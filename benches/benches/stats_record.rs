//! Measures the per-response cost of recording stats: one HDR histogram record (closed model)
//! or two (open model, latency and service time), merging a worker's interval into the
//! aggregator's cumulative view, and a worker's swap to a new interval: fresh stats per name
//! (as before) against emptying the merged ones handed back (as a worker now does), with the
//! allocations each makes counted and printed.
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use blast_engine::Stats;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Duration;

/// Allocations made by `f` (the `allocation-counter` crate's counting allocator).
fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

/// A worker's swap to a new interval with ten request names, the open model's stats.
fn interval_swap(c: &mut Criterion) {
    const NAMES: usize = 10;
    let fresh = || (0..NAMES).map(|_| Stats::new(true)).collect::<Vec<Stats>>();
    let mut spare = fresh();
    let reuse = |spare: &mut Vec<Stats>| {
        for s in spare.iter_mut() {
            s.record(Duration::from_micros(700), Duration::from_micros(300));
            s.reset();
        }
    };
    println!(
        "interval swap, {NAMES} names: fresh stats {} allocations, the merged ones emptied {}",
        allocations(|| drop(black_box(fresh()))),
        allocations(|| reuse(&mut spare))
    );
    c.bench_function("interval_swap_fresh", |b| b.iter(|| black_box(fresh())));
    c.bench_function("interval_swap_reuse", |b| {
        b.iter(|| reuse(black_box(&mut spare)))
    });
}

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

criterion_group!(benches, record, interval_swap);
criterion_main!(benches);
