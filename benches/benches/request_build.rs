//! Measures what the hot path does to produce a request from its compiled template: hand out
//! the pre-encoded bytes (raw client) or build an `http::Request` (hyper client).
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use blast_engine::{RequestTemplate, Target};
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn build(c: &mut Criterion) {
    let (target, _) = Target::parse("http://127.0.0.1:8080/").unwrap();
    let headers = vec![
        (
            "Authorization".to_string(),
            "Token 0123456789abcdef".to_string(),
        ),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    let body = Bytes::from_static(br#"{"app":"blast","version":"1.0","ring":"canary"}"#);
    let template =
        RequestTemplate::new(&target, "POST", "/api/v1/deployments/", &headers, body).unwrap();
    c.bench_function("request_encoded_raw", |b| {
        b.iter(|| black_box(template.encoded().clone()))
    });
    c.bench_function("request_build_hyper", |b| {
        b.iter(|| black_box(template.build()))
    });
}

criterion_group!(benches, build);
criterion_main!(benches);
