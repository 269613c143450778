//! Measures what a user does per request on the hot path, outside the socket: decide, write the
//! request's wire bytes, judge the response. `fixed` is `blast URL` (pre-encoded bytes copied);
//! `burst` is the P4.3 burst profile (task pick, JSON body template with generators, token
//! header, rest per wait time).
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use blast_engine::{Action, Reply, RequestTemplate, Requests, Script, Target, User, UserId};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const USER: UserId = UserId {
    index: 0,
    worker: 0,
    workers: 1,
    shard: 0,
    shards: 1,
};

/// One request's worth of user work: `next` until a send, then its verdict.
fn cycle(user: &mut dyn User, buf: &mut Vec<u8>, reply: &Reply<'_>) {
    loop {
        buf.clear();
        if let Action::Send { .. } = user.next(buf) {
            black_box(&buf);
            let _ = black_box(user.response(reply));
            return;
        }
    }
}

fn render(c: &mut Criterion) {
    let (target, _) = Target::parse("http://127.0.0.1:8080/").unwrap();
    let mut buf = Vec::with_capacity(512);
    let ok = Reply {
        status: 200,
        body: b"",
        truncated: false,
        set_cookies: &[],
    };

    let get = RequestTemplate::new(&target, "GET", "/", &[], Default::default()).unwrap();
    let mut fixed = Requests::new(vec![get]).user(USER);
    c.bench_function("user_request_fixed", |b| {
        b.iter(|| cycle(fixed.as_mut(), &mut buf, &ok))
    });

    let scenario = blast_p43::profile("burst").unwrap();
    let mut burst = scenario.script(&target).user(USER);
    // The login: the token is captured from its response.
    burst.next(&mut buf);
    let login = Reply {
        body: br#"{"token":"0123456789abcdef0123456789abcdef"}"#,
        ..ok
    };
    burst.response(&login).unwrap();
    let created = Reply { status: 201, ..ok };
    c.bench_function("user_request_burst", |b| {
        b.iter(|| cycle(burst.as_mut(), &mut buf, &created))
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
