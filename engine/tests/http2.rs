//! HTTP/2 against a server that acts as real ones can: it caps concurrent streams, sends GOAWAY
//! after some requests on a connection, resets streams. The server is the `h2` crate's, on
//! port 0 of 127.0.0.1, speaking h2c with prior knowledge; it counts what it sees, so every
//! figure blast reports is checked against the other side of the socket.

mod support;

use support::{run, IOS};

use blast_engine::{
    Engine, EngineError, FailureClass, Plan, Protocol, RequestTemplate, Requests, Schedule,
    StreamLimit, Target,
};
use bytes::Bytes;
use h2::Reason;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the test server behaves.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    /// Its SETTINGS_MAX_CONCURRENT_STREAMS.
    max_streams: Option<u32>,
    /// Shut a connection down gracefully (GOAWAY) after this many requests on it.
    goaway_after: Option<u64>,
    /// Reset every stream with this error code instead of answering.
    reset: Option<Reason>,
    /// Answer after this long.
    delay: Duration,
    /// Its initial stream window (SETTINGS_INITIAL_WINDOW_SIZE) for request bodies.
    window: Option<u32>,
    /// Serve this many connections; hold each later one this long, then drop it.
    fail_after: Option<(u64, Duration)>,
    /// Close the first N connections, without GOAWAY, once they took this many streams.
    cut: Option<(u64, u64)>,
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    streams: AtomicU64,
    answered: AtomicU64,
    /// The most streams in flight at once on one connection.
    max_in_flight: AtomicU64,
}

fn serve(behaviour: Behaviour) -> (SocketAddr, Arc<Seen>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(connection(socket, behaviour, counts.clone()));
            }
        });
    });
    (addr, seen)
}

async fn connection(socket: tokio::net::TcpStream, b: Behaviour, seen: Arc<Seen>) {
    let nth = seen.connections.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some((served, hold)) = b.fail_after {
        if nth > served {
            tokio::time::sleep(hold).await;
            return;
        }
    }
    let mut builder = h2::server::Builder::new();
    if let Some(max) = b.max_streams {
        builder.max_concurrent_streams(max);
    }
    if let Some(window) = b.window {
        builder.initial_window_size(window);
    }
    let Ok(mut conn) = builder.handshake::<_, Bytes>(socket).await else {
        return;
    };
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut taken = 0;
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        seen.streams.fetch_add(1, Ordering::Relaxed);
        taken += 1;
        if b.cut
            .is_some_and(|(first, after)| nth <= first && taken > after)
        {
            // Dropped with the connection: this stream and those in flight go unanswered.
            return;
        }
        if b.goaway_after == Some(taken) {
            conn.graceful_shutdown();
        }
        if let Some(reason) = b.reset {
            respond.send_reset(reason);
            continue;
        }
        let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        seen.max_in_flight.fetch_max(now, Ordering::Relaxed);
        let (seen, in_flight) = (seen.clone(), in_flight.clone());
        tokio::spawn(async move {
            // Read the body, granting window for each chunk as it is read.
            let mut body = request.into_body();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            tokio::time::sleep(b.delay).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let response = http::Response::builder().status(200).body(()).unwrap();
            if let Ok(mut body) = respond.send_response(response, false) {
                if body.send_data(Bytes::from_static(b"ok"), true).is_ok() {
                    seen.answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// `users` users on 2 workers sending GET / over HTTP/2, `streams` to a connection.
fn plan(addr: SocketAddr, users: u64, streams: usize) -> Plan {
    plan_with_body(addr, users, streams, Bytes::new())
}

/// The same, with POST and `body` when it is not empty.
fn plan_with_body(addr: SocketAddr, users: u64, streams: usize, body: Bytes) -> Plan {
    let (target, _) = Target::parse(&format!("http://{addr}/")).unwrap();
    let method = if body.is_empty() { "GET" } else { "POST" };
    let template = RequestTemplate::new(&target, method, "/", &[], body).unwrap();
    let mut plan = Plan::new(
        target,
        Requests::new(vec![template]),
        Schedule::users(users),
    );
    plan.http = Some(Protocol::Http2);
    plan.streams = streams;
    support::side_by_side(
        plan,
        Duration::from_millis(1500),
        Duration::from_millis(250),
    )
}

#[test]
fn users_share_connections_a_stream_each() {
    for io in IOS {
        let (addr, seen) = serve(Behaviour {
            delay: Duration::from_millis(20),
            ..Behaviour::default()
        });
        let mut p = plan(addr, 8, 4);
        p.io = io;
        let report = run(p);
        let c = &report.total.counters;
        assert_eq!(report.protocol, Protocol::Http2);
        assert_eq!(c.failed(), 0, "{io:?}: {c:?}");
        assert_eq!(c.cancelled, 0, "{io:?}: {c:?}");
        // 4 users a worker, 4 to a connection: one connection each, and the probe's.
        assert_eq!(c.connections, 2, "{io:?}: {c:?}");
        assert_eq!(seen.connections.load(Ordering::Relaxed), 3);
        // Never more than the 4 users of a connection at once; more than one (a busy machine may
        // keep some of them from overlapping, never all).
        assert!((2..=4).contains(&seen.max_in_flight.load(Ordering::Relaxed)));
        assert_eq!(c.requests(), seen.answered.load(Ordering::Relaxed));
        assert!(c.requests() > 10, "{io:?}: {c:?}");
        assert!(c.bytes_sent > 0 && c.bytes_received > 0, "{io:?}: {c:?}");
    }
}

#[test]
fn the_servers_stream_limit_caps_users_per_connection() {
    let (addr, seen) = serve(Behaviour {
        max_streams: Some(2),
        delay: Duration::from_millis(20),
        ..Behaviour::default()
    });
    let report = run(plan(addr, 8, 8));
    let c = &report.total.counters;
    assert_eq!(
        report.streams,
        Some(StreamLimit {
            asked: 8,
            server: Some(2)
        })
    );
    assert_eq!(c.failed(), 0, "{c:?}");
    // 4 users a worker, 2 to a connection.
    assert_eq!(c.connections, 4, "{c:?}");
    assert!(seen.max_in_flight.load(Ordering::Relaxed) <= 2);
    assert_eq!(c.requests(), seen.answered.load(Ordering::Relaxed));
}

#[test]
fn goaway_moves_users_to_new_connections_without_a_failure() {
    for io in IOS {
        let (addr, seen) = serve(Behaviour {
            goaway_after: Some(25),
            delay: Duration::from_millis(2),
            ..Behaviour::default()
        });
        let mut p = plan(addr, 8, 4);
        p.io = io;
        let report = run(p);
        let c = &report.total.counters;
        assert_eq!(c.failed(), 0, "{io:?}: {c:?}");
        assert_eq!(c.cancelled, 0, "{io:?}: {c:?}");
        // 2 connections take 50 requests before their GOAWAYs; more need new connections.
        assert!(c.requests() <= 50 || c.connections > 2, "{io:?}: {c:?}");
        // Every stream the server took was answered, and blast counted each answer once (a
        // stream above a GOAWAY's last id was sent again, not counted twice).
        assert_eq!(c.requests(), seen.answered.load(Ordering::Relaxed));
        assert_eq!(
            seen.streams.load(Ordering::Relaxed),
            seen.answered.load(Ordering::Relaxed)
        );
    }
}

#[test]
fn a_body_larger_than_the_servers_window_waits_for_it_and_says_so() {
    let (addr, seen) = serve(Behaviour {
        window: Some(4096),
        ..Behaviour::default()
    });
    let mut plan = plan_with_body(addr, 2, 1, Bytes::from(vec![b'x'; 64 * 1024]));
    plan.run_time = Duration::from_millis(500);
    let c = run(plan).total.counters;
    assert!(c.requests() > 0);
    assert_eq!(c.failed(), 0, "{c:?}");
    assert_eq!(c.requests(), seen.answered.load(Ordering::Relaxed));
    // 64 KiB through a 4 KiB window: every body waited for the server's WINDOW_UPDATEs.
    assert_eq!(c.flow_control_stalls, c.requests(), "{c:?}");
    assert!(c.flow_control_stall_us > 0, "{c:?}");
}

#[test]
fn small_bodies_go_out_with_their_heads_and_never_wait() {
    let (addr, _) = serve(Behaviour::default());
    let mut plan = plan_with_body(addr, 2, 2, Bytes::from_static(b"{\"id\": 1}"));
    plan.run_time = Duration::from_millis(500);
    let c = run(plan).total.counters;
    assert!(c.requests() > 0 && c.failed() == 0, "{c:?}");
    assert_eq!(c.flow_control_stalls, 0, "{c:?}");
}

#[test]
fn a_timed_out_stream_is_cancelled_and_its_user_keeps_a_seat() {
    let (addr, seen) = serve(Behaviour {
        delay: Duration::from_millis(300),
        ..Behaviour::default()
    });
    let mut plan = plan(addr, 4, 2);
    plan.timeout = Duration::from_millis(50);
    plan.run_time = Duration::from_millis(600);
    let c = run(plan).total.counters;
    assert!(c.requests() > 4, "{c:?}");
    assert_eq!(c.failures_of(FailureClass::Timeout), c.requests(), "{c:?}");
    // A timeout cancels the stream (RST_STREAM), not the connection: the users sit down on
    // the connections they had, no new ones are opened.
    assert_eq!(c.connections, 2, "{c:?}");
    assert_eq!(seen.connections.load(Ordering::Relaxed), 3);
    assert_eq!(seen.answered.load(Ordering::Relaxed), 0);
}

#[test]
fn users_waiting_for_a_connection_that_fails_to_open_each_count_the_failure() {
    // The probe's connection is served; the workers' are held, then dropped after the run
    // time, so each user gets to try once: one opens the connection, the others wait for it.
    let (addr, _) = serve(Behaviour {
        fail_after: Some((1, Duration::from_millis(300))),
        ..Behaviour::default()
    });
    let mut plan = plan(addr, 8, 4);
    plan.run_time = Duration::from_millis(200);
    plan.stop_timeout = Duration::from_secs(2);
    let c = run(plan).total.counters;
    // All 8 users, not only the 2 that opened connections.
    assert_eq!(c.failed(), 8, "{c:?}");
    assert_eq!(c.ok, 0, "{c:?}");
}

/// Half a second of 2 users against a server that resets every stream with `reason`: what
/// blast counted, and the streams the server saw.
fn reset_by(reason: Reason) -> (blast_engine::Counters, u64) {
    let (addr, seen) = serve(Behaviour {
        reset: Some(reason),
        ..Behaviour::default()
    });
    let mut plan = plan(addr, 2, 1);
    plan.run_time = Duration::from_millis(500);
    let c = run(plan).total.counters;
    assert!(c.requests() > 0);
    assert_eq!(
        c.failures_of(FailureClass::StreamReset),
        c.requests(),
        "{c:?}"
    );
    let reason = (FailureClass::StreamReset, format!("{reason:?}"));
    assert_eq!(c.reasons.get(&reason), Some(&c.requests()), "{c:?}");
    (c, seen.streams.load(Ordering::Relaxed))
}

#[test]
fn requests_on_a_connection_that_closed_under_them_are_sent_again_elsewhere() {
    // The probe's and both workers' first connections close, with no GOAWAY, at their 31st
    // stream; the streams in flight then are idempotent GETs on reused connections.
    let (addr, seen) = serve(Behaviour {
        cut: Some((3, 30)),
        delay: Duration::from_millis(2),
        ..Behaviour::default()
    });
    let c = run(plan(addr, 8, 4)).total.counters;
    assert!(c.retries > 0, "{c:?}");
    // Every retry went to a new connection, not back to the closed one.
    assert_eq!(c.failed(), 0, "{c:?}");
    assert_eq!(c.requests(), seen.answered.load(Ordering::Relaxed));
}

#[test]
fn a_reset_stream_is_its_own_failure_class_with_its_error_code() {
    let (c, streams) = reset_by(Reason::INTERNAL_ERROR);
    assert_eq!(c.retries, 0, "{c:?}");
    assert_eq!(streams, c.requests());
}

#[test]
fn a_refused_stream_is_sent_once_more() {
    let (c, streams) = reset_by(Reason::REFUSED_STREAM);
    // REFUSED_STREAM says the server did not process it: one retry each, then the failure.
    assert_eq!(c.retries, c.requests(), "{c:?}");
    assert_eq!(streams, 2 * c.requests());
}

#[test]
fn prior_knowledge_to_an_http1_server_is_one_clear_error() {
    // The minimal target answers anything with an HTTP/1.1 response.
    let server = blast_target::MinimalServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.url().trim_start_matches("http://").parse().unwrap();
    let plan = plan(addr, 1, 1);
    let error = Engine::new(plan).unwrap().run(|_| {}).unwrap_err();
    assert!(matches!(error, EngineError::Unreachable { .. }), "{error}");
    assert!(
        error.to_string().contains("did not answer in HTTP/2"),
        "{error}"
    );
}

#[test]
fn the_reference_target_speaks_h2c_too() {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let server = blast_target::Server::start(loopback, blast_target::Config::default()).unwrap();
    let report = run(plan(server.addr(), 4, 2));
    let c = &report.total.counters;
    assert_eq!(report.protocol, Protocol::Http2);
    assert!(c.requests() > 0 && c.failed() == 0, "{c:?}");
    assert_eq!(c.connections, 2, "{c:?}");
}

#[test]
fn streams_without_http2_are_refused() {
    let (addr, _) = serve(Behaviour::default());
    let mut plan = plan(addr, 2, 4);
    plan.http = None;
    let error = Engine::new(plan).err().expect("the plan is refused");
    assert!(error.to_string().contains("--http2"), "{error}");
}
