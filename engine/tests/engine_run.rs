//! Runs the engine against the reference target over real loopback sockets and checks that
//! every request is accounted for and lands in the right class.

mod support;

use support::{run, Backend, BACKENDS, IOS, RAW};

use blast_engine::{
    Engine, FailureClass, Plan, RequestTemplate, Requests, Schedule, Shape, Stage, Target,
};
use blast_target::{Config, Latency, Server, Stall};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

fn serve(config: Config) -> Server {
    Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

fn plan(url: &str, schedule: Schedule, (client, io): Backend) -> Plan {
    let (target, uri) = Target::parse(url).unwrap();
    let path = uri.path_and_query().unwrap().as_str();
    let get = RequestTemplate::new(&target, "GET", path, &[], Default::default()).unwrap();
    let mut plan = Plan::new(target, Requests::new(vec![get]), schedule);
    (plan.client, plan.io) = (client, io);
    support::side_by_side(plan, Duration::from_millis(800), Duration::from_millis(200))
}

/// An open-model plan: `rate` requests/s, at most `max_connections`, for `secs` seconds.
fn open_plan(server: &Server, rate: f64, max_connections: u64, secs: u64) -> Plan {
    let schedule = Schedule::rate(rate, max_connections);
    let mut plan = plan(&server.url(), schedule, RAW);
    plan.run_time = Duration::from_secs(secs);
    plan
}

/// Waits until `done` holds, checking every 10 ms; a generous deadline turns a hang into a
/// failure without making the test depend on the machine's speed.
fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "waited 30 s in vain");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn target_count_reconciles_with_blast_counts() {
    for backend in BACKENDS {
        let server = serve(Config::default());
        let report = run(plan(&server.url(), Schedule::users(8), backend));
        let c = &report.total.counters;
        assert!(c.ok > 0, "{backend:?}: {c:?}");
        assert_eq!(c.failed(), 0, "{backend:?}: {c:?}");
        // A request cut off at stop may or may not have reached the server.
        let served = server.served();
        assert!(
            (c.requests()..=c.requests() + c.cancelled).contains(&served),
            "{backend:?}: served {served}, blast {c:?}"
        );
        assert_eq!(c.connections, 8, "{backend:?}");
        assert_eq!(
            report.history.iter().map(|h| h.counters.ok).sum::<u64>(),
            c.ok
        );
    }
}

#[test]
fn status_failures_are_counted_and_timed() {
    for backend in BACKENDS {
        let server = serve(Config {
            error_rate: 0.25,
            ..Config::default()
        });
        let report = run(plan(&server.url(), Schedule::users(4), backend));
        let c = &report.total.counters;
        assert_eq!(
            c.failed(),
            c.failures_of(FailureClass::Status),
            "{backend:?}"
        );
        let share = c.failed() as f64 / c.requests() as f64;
        assert!((0.2..0.3).contains(&share), "{backend:?}: {c:?}");
        // Responses with a failure status still have a latency.
        assert_eq!(report.total.latency_us.len(), c.requests());
        let status = run(plan(
            &format!("{}/status/404", server.url()),
            Schedule::users(2),
            backend,
        ));
        assert_eq!(status.total.counters.ok, 0);
        assert!(status.total.counters.failures_of(FailureClass::Status) > 0);
    }
}

#[test]
fn slow_responses_time_out_and_connections_are_replaced() {
    for backend in BACKENDS {
        let server = serve(Config {
            latency: Latency::Fixed(Duration::from_secs(2)),
            ..Config::default()
        });
        let mut p = plan(&server.url(), Schedule::users(2), backend);
        p.timeout = Duration::from_millis(150);
        let report = run(p);
        let c = &report.total.counters;
        assert!(
            c.failures_of(FailureClass::Timeout) >= 4,
            "{backend:?}: {c:?}"
        );
        assert_eq!(c.failed(), c.failures_of(FailureClass::Timeout));
        // Each timed-out connection is dropped, so every later request needs a new one.
        assert!(c.connections > 2, "{backend:?}: {c:?}");
        // A timed-out request went out whole; its bytes count, and so does its time.
        let request_len = 40;
        assert!(
            c.bytes_sent >= c.failed() * request_len,
            "{backend:?}: {c:?}"
        );
        assert_eq!(report.total.latency_us.len(), c.failed(), "{backend:?}");
        assert!(report.total.latency_us.min() >= 150_000, "{backend:?}");
        assert_eq!(report.total.ok_latency_us().len(), 0, "{backend:?}");
    }
}

#[test]
fn server_closing_keep_alive_connections_is_transparent() {
    for backend in BACKENDS {
        let server = serve(Config {
            close_after: Some(5),
            ..Config::default()
        });
        let report = run(plan(&server.url(), Schedule::users(4), backend));
        let c = &report.total.counters;
        assert_eq!(c.failed(), 0, "{backend:?}: {c:?}");
        assert!(c.connections >= c.ok / 5, "{backend:?}: {c:?}");
        // The server also saw the engine's one probe connection before the run.
        assert_eq!(server.connections(), c.connections + 1, "{backend:?}");
    }
}

#[test]
fn a_target_that_dies_mid_run_gives_connect_failures_not_a_hang() {
    for backend in BACKENDS {
        let server = serve(Config {
            close_after: Some(1),
            ..Config::default()
        });
        let p = plan(&server.url(), Schedule::users(2), backend);
        // The target goes once it has answered some requests, however fast the machine.
        let killer = std::thread::spawn(move || {
            wait_for(|| server.served() >= 20);
            drop(server);
        });
        let report = run(p);
        killer.join().unwrap();
        let c = &report.total.counters;
        assert!(c.ok > 0, "{backend:?}: {c:?}");
        assert!(
            c.failures_of(FailureClass::Connect) > 0,
            "{backend:?}: {c:?}"
        );
        // Nothing listens on the port any more: connects are refused (one caught while the
        // server was going down may fail otherwise).
        let connect = c.failures_of(FailureClass::Connect);
        assert!(c.refused > 0 && c.refused <= connect, "{backend:?}: {c:?}");
        // Backoff keeps a dead target from turning users into a busy loop.
        assert!(
            c.failures_of(FailureClass::Connect) < 200,
            "{backend:?}: {c:?}"
        );
    }
}

#[test]
fn a_target_that_refuses_is_an_error_before_the_run() {
    // Bound but not listening: connections are refused, and no other test can take the port.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let engine = Engine::new(plan(&format!("http://{addr}/"), Schedule::users(1), RAW));
    let err = engine.unwrap().run(|_| {}).unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

/// A server that answers the first request on a connection with `reply`, then closes, or with
/// `hold` keeps the connection open until the client closes it.
fn misbehaving(reply: &'static [u8], hold: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                // The whole request head first: closing with part of it unread would send a
                // reset instead of the reply (a request that arrived in two reads).
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(reply);
                // Held open, the client meets the reply alone, not racing the close to it (hyper
                // then reports the close as often as the broken reply).
                while hold && s.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    format!("http://{addr}/")
}

#[test]
fn resets_and_malformed_responses_are_classified() {
    // A header far larger than either client accepts (raw: 64 KiB, hyper: about 400 KiB).
    let mut huge = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    huge.resize(huge.len() + 512 * 1024, b'a');
    huge.extend(b"\r\ncontent-length: 0\r\n\r\n");
    let huge: &'static [u8] = Box::leak(huge.into_boxed_slice());
    let cases: [(&[u8], bool, FailureClass); 4] = [
        // Closed before any byte of the response.
        (b"", false, FailureClass::Reset),
        (b"garbage\r\n\r\n", true, FailureClass::Protocol),
        // A wrong Content-Length: 100 announced, 9 sent, then the server closes mid-response.
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\ntruncated",
            false,
            FailureClass::Protocol,
        ),
        (huge, true, FailureClass::Protocol),
    ];
    for backend in BACKENDS {
        for (reply, hold, class) in cases {
            let url = misbehaving(reply, hold);
            let mut p = plan(&url, Schedule::users(1), backend);
            p.workers = 1;
            p.run_time = Duration::from_millis(300);
            let c = run(p).total.counters;
            assert!(c.failures_of(class) > 0, "{backend:?} {reply:?}: {c:?}");
            assert_eq!(
                c.failed(),
                c.failures_of(class),
                "{backend:?} {reply:?}: {c:?}"
            );
        }
    }
}

#[test]
fn open_model_sends_every_slot_once() {
    for io in IOS {
        let server = serve(Config::default());
        let mut p = open_plan(&server, 500.0, 50, 1);
        p.io = io;
        let report = run(p);
        let c = &report.total.counters;
        // 500 slots fall inside one second; none is sent twice.
        let sent = c.requests() + c.cancelled;
        assert!((480..=500).contains(&sent), "{io:?}: {c:?}");
        assert_eq!(c.failed(), 0, "{io:?}");
        assert!(report.total.service_us.is_some());
    }
}

#[test]
fn open_model_rate_below_worker_count_works() {
    let server = serve(Config::default());
    let p = open_plan(&server, 1.5, 4, 2);
    let c = run(p).total.counters;
    // Slots at 1/3 s, 1 s, 5/3 s (worker 0 at 0, 4/3 s; worker 1 at 1/3, 5/3 s... ) = 3.
    assert_eq!(c.requests() + c.cancelled, 3, "{c:?}");
}

#[test]
fn a_stall_shows_in_latency_from_the_intended_start() {
    for io in IOS {
        let server = serve(Config {
            stall: Some(Stall {
                after: Duration::from_millis(500),
                duration: Duration::from_secs(1),
            }),
            ..Config::default()
        });
        let mut p = open_plan(&server, 1000.0, 8, 3);
        p.io = io;
        let report = run(p);
        let latency_p99 = report.total.latency_us.value_at_quantile(0.99);
        let service = report.total.service_us.as_ref().unwrap();
        assert!(latency_p99 >= 500_000, "{io:?}: p99 {latency_p99} µs");
        // Only the few requests on the stalled connections waited in the server; the rest
        // waited for a free connection, which service time alone would hide.
        assert!(service.value_at_quantile(0.99) < latency_p99 / 2, "{io:?}");
        assert!(report.total.counters.late_sends > 100, "{io:?}");
    }
}

#[test]
fn a_stop_request_ends_the_run_early_with_everything_counted() {
    let server = serve(Config::default());
    let mut p = plan(&server.url(), Schedule::users(4), RAW);
    p.run_time = Duration::from_secs(60);
    let engine = Engine::new(p).unwrap();
    let stop = engine.handle();
    // Stop once requests are flowing: an event, not a guess at how long that takes.
    let report = engine
        .run(|s| {
            if s.cumulative_total.counters.requests() > 0 {
                stop.stop();
            }
        })
        .unwrap();
    assert!(report.interrupted);
    assert!(report.duration < Duration::from_secs(60));
    let c = &report.total.counters;
    let served = server.served();
    assert!(
        (c.requests()..=c.requests() + c.cancelled).contains(&served),
        "{served} vs {c:?}"
    );
}

#[test]
fn a_staged_rate_sends_exactly_the_area_under_its_shape() {
    let server = serve(Config::default());
    // 0 → 200/s over one second: 100 arrivals in all.
    let rate = Shape {
        start: 0.0,
        stages: vec![Stage {
            duration: Duration::from_secs(1),
            target: 200.0,
        }],
    };
    let mut p = plan(
        &server.url(),
        Schedule::Open {
            rate,
            max_connections: 20,
        },
        RAW,
    );
    p.run_time = Duration::from_secs(1);
    let report = run(p);
    let c = &report.total.counters;
    assert_eq!(c.requests() + c.cancelled, 100, "{c:?}");
}

#[test]
fn the_user_count_can_change_while_running() {
    let server = serve(Config::default());
    let mut p = plan(&server.url(), Schedule::users(8), RAW);
    p.run_time = Duration::from_millis(1500);
    let engine = Engine::new(p).unwrap();
    let handle = engine.handle();
    // Retarget once all eight users run, from the run's own intervals.
    let mut steered = false;
    let report = engine
        .run(|s| {
            if s.users == 8 && !std::mem::replace(&mut steered, true) {
                handle.set_users(3);
            }
        })
        .unwrap();
    assert!(steered, "the eight users never all ran");
    let users: Vec<u64> = report.history.iter().map(|h| h.users).collect();
    assert_eq!(users.iter().max(), Some(&8), "{users:?}");
    // The last interval is the stop; the one before it ran with the new count.
    assert_eq!(users[users.len() - 2], 3, "{users:?}");
}

#[test]
fn max_connections_is_never_exceeded_and_missed_slots_are_counted() {
    for latency_ms in [0, 50] {
        let server = serve(Config {
            latency: match latency_ms {
                0 => Latency::None,
                ms => Latency::Fixed(Duration::from_millis(ms)),
            },
            ..Config::default()
        });
        let report = run(open_plan(&server, 2000.0, 5, 2));
        let c = &report.total.counters;
        assert!(c.connections <= 5, "{latency_ms} ms: {c:?}");
        // The probe before the run is the server's one extra connection.
        assert!(server.connections() <= 6, "{latency_ms} ms");
        let (scheduled, missed) = report.slots;
        // Each slot sends one request: sent + missed is every slot of the 2 s timetable.
        let sent = c.requests() + c.cancelled;
        assert_eq!(sent + missed, scheduled, "{latency_ms} ms: {c:?}");
        assert!((3990..=4000).contains(&scheduled), "{scheduled}");
        if latency_ms == 50 {
            // 5 connections at 50 ms carry at most 100 requests/s of the 2000 asked for.
            assert!(missed > 3000, "{missed}");
            assert!(report.history.iter().any(|h| h.backlog > 1000));
        }
    }
}

#[test]
fn history_intervals_carry_their_real_start_and_end() {
    let server = serve(Config::default());
    let mut plan = plan(&server.url(), Schedule::users(2), RAW);
    plan.run_time = Duration::from_millis(1000);
    plan.interval = Duration::from_millis(300);
    // One worker: with more, an interval spans from the earliest worker's start to the latest
    // one's end, and neighbours overlap by the workers' skew.
    plan.workers = 1;
    let report = run(plan);
    let h = &report.history;
    assert!(!h.is_empty());
    assert_eq!(h[0].start, Duration::ZERO);
    for pair in h.windows(2) {
        assert_eq!(pair[0].elapsed, pair[1].start);
    }
    for i in h {
        assert!(i.elapsed > i.start && i.counters.requests() > 0, "{i:?}");
    }
    // The last interval runs to the end of sending (and its grace), not to a tick: 0.9 s
    // would leave a 0.1 s row of its own.
    assert!(h.last().unwrap().elapsed >= Duration::from_millis(1000));
    assert!(report.sending <= Duration::from_millis(1000));
}

/// Users that panic on their third request: a bug, which must not pass for a complete run.
struct Buggy(Vec<blast_engine::Name>, bytes::Bytes);

impl blast_engine::Script for Buggy {
    fn names(&self) -> &[blast_engine::Name] {
        &self.0
    }

    fn user(&self, _id: blast_engine::UserId) -> Box<dyn blast_engine::User> {
        Box::new(BuggyUser(self.1.clone(), 0))
    }
}

struct BuggyUser(bytes::Bytes, u32);

impl blast_engine::User for BuggyUser {
    fn next(&mut self, request: &mut Vec<u8>) -> blast_engine::Action {
        self.1 += 1;
        assert!(self.1 < 3, "a bug in a script");
        request.extend_from_slice(&self.0);
        blast_engine::Action::Send {
            name: 0,
            keep_body: false,
            follow_redirects: false,
            timeout: None,
        }
    }

    fn response(&mut self, _reply: &blast_engine::Reply<'_>) -> Result<(), FailureClass> {
        Ok(())
    }

    fn failed(&mut self, _class: FailureClass) {}
}

#[test]
fn a_panicking_worker_ends_the_run_marked_incomplete() {
    let server = serve(Config::default());
    let (target, _) = Target::parse(&server.url()).unwrap();
    let get = RequestTemplate::new(&target, "GET", "/", &[], Default::default()).unwrap();
    let name = blast_engine::Name {
        method: "GET".into(),
        name: "/".into(),
    };
    let mut plan = Plan::new(
        target,
        Buggy(vec![name], get.encoded().clone()),
        Schedule::users(2),
    );
    plan.pin = false;
    plan.run_time = Duration::from_secs(30);
    let started = std::time::Instant::now();
    let report = run(plan);
    assert!(report.incomplete.is_some(), "{:?}", report.incomplete);
    assert!(report.interrupted);
    // The run stopped at once instead of running its 30 s without the panicked users.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn the_rate_can_change_while_running() {
    let server = serve(Config::default());
    let plan = open_plan(&server, 100.0, 100, 2);
    let engine = Engine::new(plan).unwrap();
    let handle = engine.handle();
    // Raise the rate at the first interval past 1 s of the run's own clock; the timetable
    // then owes 100 slots a second before it and 400 after, whatever the machine sends.
    let mut changed_at = None;
    let report = engine
        .run(|s| {
            if s.elapsed >= Duration::from_secs(1) && changed_at.is_none() {
                handle.set_rate(400.0);
                changed_at = Some(s.elapsed.as_secs_f64());
            }
        })
        .unwrap();
    let t = changed_at.expect("the run lasted past 1 s");
    let c = &report.total.counters;
    let (scheduled, missed) = report.slots;
    // The change takes effect at some time T at or after t (a busy machine delivers the
    // interval late), and before the end (0.8 s of slack): 200 < slots <= 100 t + 400 (2 - t),
    // give or take a slot at each end of each of the two timetables of each of the 2 workers
    // (a timetable's first slot is due at its start).
    let owed = 100.0 * t + 400.0 * (2.0 - t);
    assert!(
        scheduled > 200 && scheduled as f64 <= owed + 4.0,
        "{scheduled} slots, at most {owed:.0} owed (changed at {t:.2} s)"
    );
    assert_eq!(c.requests() + c.cancelled + missed, scheduled, "{c:?}");
}

#[test]
fn reset_stats_forgets_the_ramp_up() {
    let server = serve(Config::default());
    let ramp = Schedule::Closed {
        users: Shape::ramp(4.0, 4.0),
    };
    let mut plan = plan(&server.url(), ramp, RAW);
    plan.run_time = Duration::from_secs(3);
    plan.interval = Duration::from_millis(250);
    plan.reset_stats = true;
    let report = run(plan);
    let phases: Vec<_> = report.phases.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(phases, ["ramp-up", "steady"]);
    let (ramp, steady) = (&report.phases[0].stats, &report.phases[1].stats);
    assert!(ramp.counters.requests() > 0 && steady.counters.requests() > 0);
    // The run's totals are the steady state's; the phases still hold both.
    assert_eq!(report.total.counters.requests(), steady.counters.requests());
    assert_eq!(report.total.latency_us.len(), steady.latency_us.len());
}
