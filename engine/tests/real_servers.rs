//! How connections behave against servers that act as real ones do: idle keep-alive timeouts,
//! a close right after a response, an unsolicited 408, an address that does not answer, TLS.
//! Every server listens on port 0 of a loopback address.

mod support;

use support::{run, Backend, BACKENDS, RAW};

use blast_engine::{
    Action, Engine, FailureClass, Name, Plan, Reply, RequestTemplate, Schedule, Script, Target,
    TlsOptions, User, UserId,
};
use blast_target::{Config, Server, TlsIdentity};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Users that send one request, then rest: the think time real users have, which is what lets
/// a server's keep-alive timer close their idle connections.
struct Resting {
    names: Vec<Name>,
    request: bytes::Bytes,
    rest: Duration,
}

struct RestingUser {
    request: bytes::Bytes,
    rest: Duration,
    sent: bool,
}

impl Script for Resting {
    fn names(&self) -> &[Name] {
        &self.names
    }

    fn user(&self, _id: UserId) -> Box<dyn User> {
        Box::new(RestingUser {
            request: self.request.clone(),
            rest: self.rest,
            sent: false,
        })
    }
}

impl User for RestingUser {
    fn next(&mut self, request: &mut Vec<u8>) -> Action {
        self.sent = !self.sent;
        if !self.sent {
            return Action::Rest {
                until: Some(Instant::now() + self.rest),
                skipped: None,
            };
        }
        request.extend_from_slice(&self.request);
        Action::Send {
            name: 0,
            keep_body: false,
            follow_redirects: false,
            timeout: None,
        }
    }

    fn response(&mut self, reply: &Reply<'_>) -> Result<(), FailureClass> {
        match reply.status {
            200..=399 => Ok(()),
            _ => Err(FailureClass::Status),
        }
    }

    fn failed(&mut self, _class: FailureClass) {}
}

/// A plan for `users` users sending `method path` to `url` and resting `rest` between requests.
fn plan(url: &str, method: &str, rest: Duration, users: u64, (client, io): Backend) -> Plan {
    let (target, _) = Target::parse(url).unwrap();
    let body = if method == "POST" { "{}" } else { "" };
    let template = RequestTemplate::new(&target, method, "/", &[], body.into()).unwrap();
    let script = Resting {
        names: vec![Name {
            method: method.into(),
            name: "/".into(),
        }],
        request: template.encoded().clone(),
        rest,
    };
    let mut plan = Plan::new(target, script, Schedule::users(users));
    (plan.client, plan.io) = (client, io);
    support::side_by_side(
        plan,
        Duration::from_millis(1500),
        Duration::from_millis(250),
    )
}

#[test]
fn idle_connections_the_server_closed_are_reopened_not_failed() {
    for backend in BACKENDS {
        // 150 ms is not announced (under a second), as gunicorn announces nothing: only the
        // check before reuse can tell. Users rest 400 ms, well past it.
        let server = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            Config {
                keep_alive_timeout: Some(Duration::from_millis(150)),
                ..Config::default()
            },
        )
        .unwrap();
        let report = run(plan(
            &server.url(),
            "GET",
            Duration::from_millis(400),
            4,
            backend,
        ));
        let c = &report.total.counters;
        assert_eq!(c.failed(), 0, "{backend:?}: {c:?}");
        assert!(c.ok >= 8, "{backend:?}: {c:?}");
        assert!(c.reconnects >= 4, "{backend:?}: {c:?}");
        assert_eq!(
            c.connections,
            4 + c.reconnects + c.retries,
            "{backend:?}: {c:?}"
        );
        assert_eq!(server.served(), c.ok, "{backend:?}");
    }
}

#[test]
fn an_announced_keep_alive_timeout_retires_connections_before_it_fires() {
    // `Keep-Alive: timeout=1`: blast reuses a connection idle up to half of that, so users
    // resting 700 ms reconnect every time without ever meeting the server's close.
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Config {
            keep_alive_timeout: Some(Duration::from_secs(1)),
            ..Config::default()
        },
    )
    .unwrap();
    let report = run(plan(
        &server.url(),
        "GET",
        Duration::from_millis(700),
        2,
        RAW,
    ));
    let c = &report.total.counters;
    assert_eq!((c.failed(), c.retries), (0, 0), "{c:?}");
    assert_eq!(
        c.reconnects,
        c.ok - 2,
        "every request but the first reconnects: {c:?}"
    );
}

/// A server that answers the first request on each connection, then reads the next one and
/// hangs up without answering: a keep-alive race lost, made deterministic. It counts answers.
fn answer_once_then_drop() -> (SocketAddr, Arc<AtomicU64>) {
    serve_raw(|stream, answered| {
        read_request(stream)?;
        // Counted before it is written: blast cannot have read an answer the count misses
        // (counted after, a busy machine could pause this thread past the end of the run).
        answered.fetch_add(1, Ordering::Relaxed);
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")?;
        read_request(stream)?;
        Ok(())
    })
}

/// A server that answers once, then sends a 408 nobody asked for and closes, as servers do
/// when their idle timer fires.
fn answer_once_then_408() -> (SocketAddr, Arc<AtomicU64>) {
    serve_raw(|stream, answered| {
        read_request(stream)?;
        // Counted before it is written: blast cannot have read an answer the count misses
        // (counted after, a busy machine could pause this thread past the end of the run).
        answered.fetch_add(1, Ordering::Relaxed);
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")?;
        stream.write_all(
            b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        )?;
        Ok(())
    })
}

type Handler = fn(&mut TcpStream, &AtomicU64) -> std::io::Result<()>;

/// Serves each connection with `handle` on its own thread, then closes it.
fn serve_raw(handle: Handler) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = handle(&mut stream, &count);
            });
        }
    });
    (addr, answered)
}

/// Reads one request: its head, then as many body bytes as its content-length says.
fn read_request(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap_or(0));
    stream.read_exact(&mut vec![0; length])
}

#[test]
fn an_idempotent_request_is_retried_once_when_a_reused_connection_drops_it() {
    for backend in BACKENDS {
        let (addr, answered) = answer_once_then_drop();
        let url = format!("http://{addr}/");
        let report = run(plan(&url, "GET", Duration::from_millis(50), 2, backend));
        let c = &report.total.counters;
        assert_eq!(c.failed(), 0, "{backend:?}: {c:?}");
        assert!(c.retries >= 2, "{backend:?}: {c:?}");
        assert_eq!(answered.load(Ordering::Relaxed), c.ok, "{backend:?}: {c:?}");
    }
}

#[test]
fn a_written_post_is_not_retried() {
    for backend in BACKENDS {
        let (addr, answered) = answer_once_then_drop();
        let url = format!("http://{addr}/");
        let report = run(plan(&url, "POST", Duration::from_millis(50), 2, backend));
        let c = &report.total.counters;
        assert_eq!(c.retries, 0, "{backend:?}: {c:?}");
        assert!(
            c.failures_of(FailureClass::Reset) >= 2,
            "{backend:?}: {c:?}"
        );
        assert_eq!(answered.load(Ordering::Relaxed), c.ok, "{backend:?}: {c:?}");
    }
}

#[test]
fn no_retry_turns_retries_off() {
    let (addr, _) = answer_once_then_drop();
    let mut plan = plan(
        &format!("http://{addr}/"),
        "GET",
        Duration::from_millis(50),
        2,
        RAW,
    );
    plan.retry = false;
    let c = run(plan).total.counters;
    assert_eq!(c.retries, 0, "{c:?}");
    assert!(c.failures_of(FailureClass::Reset) >= 2, "{c:?}");
}

#[test]
fn an_unsolicited_408_is_never_read_as_the_next_response() {
    for backend in BACKENDS {
        let (addr, answered) = answer_once_then_408();
        let url = format!("http://{addr}/");
        let report = run(plan(&url, "GET", Duration::from_millis(50), 2, backend));
        let c = &report.total.counters;
        assert_eq!(c.failed(), 0, "{backend:?}: {c:?}");
        assert!(c.failed_statuses.is_empty(), "{backend:?}: {c:?}");
        assert!(c.reconnects >= 2, "{backend:?}: {c:?}");
        assert_eq!(answered.load(Ordering::Relaxed), c.ok, "{backend:?}: {c:?}");
    }
}

#[test]
fn every_resolved_address_is_tried_until_one_connects() {
    // The server listens on ::1 only, as a server bound to "localhost" may; the name's first
    // address (127.0.0.1) refuses, as it would for `http://localhost:PORT/`.
    let server = Server::start("[::1]:0".parse().unwrap(), Config::default()).unwrap();
    let port = server.addr().port();
    let mut plan = plan(
        &format!("http://127.0.0.1:{port}/"),
        "GET",
        Duration::from_millis(20),
        4,
        RAW,
    );
    plan.target.addrs = vec![SocketAddr::from(([127, 0, 0, 1], port)), server.addr()].into();
    let c = run(plan).total.counters;
    assert_eq!(c.failed(), 0, "{c:?}");
    assert_eq!(server.served(), c.ok);
    assert_eq!(c.connections, 4, "{c:?}");
}

#[test]
fn ipv6_literals_work() {
    let server = Server::start("[::1]:0".parse().unwrap(), Config::default()).unwrap();
    let url = format!("http://[::1]:{}/", server.addr().port());
    let c = run(plan(&url, "GET", Duration::from_millis(20), 2, RAW))
        .total
        .counters;
    assert_eq!(c.failed(), 0, "{c:?}");
    assert_eq!(server.served(), c.ok);
}

fn tls_server(config: Config) -> (Server, TlsIdentity) {
    let identity = TlsIdentity::self_signed();
    let config = Config {
        tls: Some(identity.clone()),
        ..config
    };
    (
        Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap(),
        identity,
    )
}

#[test]
fn https_with_the_servers_ca_counts_handshakes_and_resumes_sessions() {
    for backend in BACKENDS {
        // Every response closes its connection, so each request needs a new handshake: all
        // but the first per user can resume.
        let (server, identity) = tls_server(Config {
            close_after: Some(1),
            ..Config::default()
        });
        assert!(server.url().starts_with("https://127.0.0.1:"));
        let mut plan = plan(&server.url(), "GET", Duration::from_millis(50), 2, backend);
        plan.tls = TlsOptions {
            ca_certs_pem: Some(identity.cert_pem.into_bytes()),
            ..TlsOptions::default()
        };
        let c = run(plan).total.counters;
        assert_eq!(c.failed(), 0, "{backend:?}: {c:?}");
        assert_eq!(server.served(), c.ok, "{backend:?}");
        assert_eq!(c.tls_handshakes, c.connections, "{backend:?}: {c:?}");
        assert!(c.tls_resumed >= 1, "{backend:?}: {c:?}");
        assert!(c.mean_tls_handshake().is_some(), "{backend:?}");
    }
}

#[test]
fn an_untrusted_certificate_is_one_clear_error_before_the_run() {
    let (server, _) = tls_server(Config::default());
    let mut plan = plan(&server.url(), "GET", Duration::ZERO, 1, RAW);
    // An empty trust store stands for a system that does not know this self-signed CA.
    let other = TlsIdentity::self_signed();
    plan.tls.ca_certs_pem = Some(other.cert_pem.into_bytes());
    let Err(e) = Engine::new(plan).unwrap().run(|_| {}) else {
        panic!("an untrusted certificate must stop the run");
    };
    let e = e.to_string();
    assert!(e.contains("not trusted") && !e.contains('\n'), "{e}");
    assert_eq!(server.served(), 0);
}

#[test]
fn insecure_skips_verification() {
    let (server, _) = tls_server(Config::default());
    let mut plan = plan(&server.url(), "GET", Duration::from_millis(20), 2, RAW);
    plan.tls.insecure = true;
    let c = run(plan).total.counters;
    assert_eq!(c.failed(), 0, "{c:?}");
    assert_eq!(server.served(), c.ok);
}

#[test]
fn plain_http_on_a_tls_port_fails_as_tls_with_its_reason() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let url = format!("https://{}/", server.addr());
    let mut plan = plan(&url, "GET", Duration::ZERO, 1, RAW);
    plan.tls.insecure = true;
    let e = Engine::new(plan).unwrap().run(|_| {}).err().unwrap();
    assert!(e.to_string().contains("did not answer in TLS"), "{e}");
}
