//! Measures what a request's timeout costs the worker: `tokio::time::timeout` (a timer entry
//! registered with the runtime's driver when the request first waits, and removed when it
//! ends, as workers did) against a user's reused deadline that the control tick checks (as
//! workers do now). The request is a future that waits once, as a response read does.
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use blast_engine::deadline::Deadlines;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

/// A request that is not ready when first polled: the timeout must be armed.
async fn request() -> u64 {
    tokio::task::yield_now().await;
    1
}

fn request_timeout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    const REQUESTS: u64 = 1000;
    let timeout = Duration::from_secs(60);
    let mut group = c.benchmark_group("request_timeout_x1000");
    group.bench_function("none", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut n = 0;
                for _ in 0..REQUESTS {
                    n += request().await;
                }
                n
            })
        })
    });
    group.bench_function("tokio_timeout", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut n = 0;
                for _ in 0..REQUESTS {
                    n += tokio::time::timeout(timeout, request()).await.unwrap();
                }
                n
            })
        })
    });
    let deadlines = Deadlines::default();
    let deadline = deadlines.register();
    group.bench_function("deadline", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut n = 0;
                // The worker reads the clock for each request's send time anyway: the
                // deadline adds no clock read of its own.
                let at = Instant::now() + timeout;
                for _ in 0..REQUESTS {
                    n += deadline
                        .within(at, std::pin::pin!(request()))
                        .await
                        .unwrap();
                }
                n
            })
        })
    });
    group.finish();
}

criterion_group!(benches, request_timeout);
criterion_main!(benches);
