//! The web UI's HTTP side: the page, Locust's API, blast's event stream and the downloads.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::form::Swarm;
use super::{lock, Web};

/// The page, with its script and styles; embedded, so it works offline.
const PAGE: &str = include_str!("page.html");

/// Bodies larger than this are refused unread (413): the API's forms are a few hundred bytes.
const MAX_BODY: u64 = 64 * 1024;

/// The routes that change state: POST only, and only from the UI's own origin.
const STATE_CHANGING: [&str; 3] = ["/swarm", "/stop", "/stats/reset"];

/// The longest pause of the accept loop after a failed accept (out of file descriptors, say).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The HTTP server: one current-thread runtime, one task per connection.
pub(super) fn serve(listener: TcpListener, web: Arc<Web>, defaults: Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds on any supported OS");
    let defaults = Arc::new(defaults);
    runtime.block_on(async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let mut backoff = Duration::ZERO;
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(_) => {
                    // Out of descriptors (EMFILE) the pending connection stays queued and accept
                    // fails at once again: pause, as Go's net/http does, instead of spinning, and
                    // serve again once a descriptor is free.
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let (web, defaults) = (web.clone(), defaults.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (web, defaults) = (web.clone(), defaults.clone());
                    async move { Ok::<_, hyper::Error>(respond(&web, &defaults, req, peer).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

/// blast's stream of chart points, as server-sent events: one event per interval.
struct Events(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|event| event.map(|data| Ok(hyper::body::Frame::data(data))))
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_reply(value: &Value) -> Reply {
    reply(StatusCode::OK, "application/json", value.to_string())
}

async fn respond(web: &Web, defaults: &Value, req: Request<Incoming>, peer: SocketAddr) -> Reply {
    if let Some(refusal) = refuse(web, &req, peer) {
        return refusal;
    }
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        (Method::GET, "/metrics") => reply(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            web.metrics.render(),
        ),
        (Method::POST, "/swarm") => {
            let Ok(body) = Limited::new(req.into_body(), MAX_BODY as usize)
                .collect()
                .await
            else {
                return too_large();
            };
            let (status, answer) = swarm(web, &body.to_bytes()).await;
            let mut r = json_reply(&answer);
            *r.status_mut() = status;
            r
        }
        (Method::POST, "/stop") => {
            let running = lock(&web.state).handle.clone();
            match running {
                Some(handle) => {
                    handle.stop();
                    json_reply(&json!({"success": true, "message": "Test stopped"}))
                }
                None => json_reply(&json!({"success": false, "message": "No test is running"})),
            }
        }
        (Method::POST, "/stats/reset") => {
            let mut s = lock(&web.state);
            s.baseline = s.latest.clone();
            // Shown at once, as Locust does; the next interval fills in the rest.
            if let Some(rows) = s.stats["stats"].as_array_mut() {
                for row in rows {
                    row["num_requests"] = json!(0);
                    row["num_failures"] = json!(0);
                }
            }
            s.stats["errors"] = json!([]);
            s.stats["fail_ratio"] = json!(0.0);
            json_reply(&json!({"success": true, "message": "Stats reset"}))
        }
        (Method::GET, "/stats/requests") => {
            let s = lock(&web.state);
            let mut body = s.stats.clone();
            if let Some(b) = body.as_object_mut() {
                b.insert("state".into(), json!(s.phase));
                b.entry("stats").or_insert(json!([]));
                b.entry("errors").or_insert(json!([]));
                b.entry("user_count").or_insert(json!(0));
            }
            json_reply(&body)
        }
        (Method::GET, "/blast/state") => {
            let s = lock(&web.state);
            json_reply(&json!({
                "state": s.phase,
                "runs": s.runs,
                "points": s.points,
                "outcome": s.outcome,
                "criteria": s.live_criteria,
                "error": s.error,
                "defaults": defaults,
            }))
        }
        (Method::GET, "/blast/stream") => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            lock(&web.state).streams.push(tx);
            let mut r = Response::new(Events(rx).boxed());
            for (name, value) in [
                (hyper::header::CONTENT_TYPE, "text/event-stream"),
                (hyper::header::CACHE_CONTROL, "no-cache"),
            ] {
                r.headers_mut()
                    .insert(name, hyper::header::HeaderValue::from_static(value));
            }
            r
        }
        (Method::GET, file) => download(web, file),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

/// `POST /swarm`: starts a run, or retargets the running one. The answer says what happened:
/// a start is answered once the run has started or failed to.
async fn swarm(web: &Web, form: &[u8]) -> (StatusCode, Value) {
    let (answer, host) = match ask(web, form) {
        Ok(asked) => asked,
        Err(now) => return now,
    };
    match answer.await {
        Ok(Ok(())) => (
            StatusCode::OK,
            json!({"success": true, "message": "Swarming started", "host": host}),
        ),
        Ok(Err(message)) => (
            StatusCode::BAD_REQUEST,
            json!({"success": false, "message": message}),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"success": false, "message": "blast is quitting"}),
        ),
    }
}

/// What `POST /swarm` can answer at once (`Err`: a retarget, or a refusal), or the run it asked
/// for, whose start is answered on the channel, and the host it loads.
type Asked = Result<(oneshot::Receiver<Result<(), String>>, Option<String>), (StatusCode, Value)>;

/// [`swarm`]'s decisions, made under the state's lock.
fn ask(web: &Web, form: &[u8]) -> Asked {
    let refused = |message: String| {
        Err((
            StatusCode::BAD_REQUEST,
            json!({"success": false, "message": message}),
        ))
    };
    let swarm = match Swarm::parse(form) {
        Ok(swarm) => swarm,
        Err(e) => return refused(e),
    };
    let mut s = lock(&web.state);
    if let Some(handle) = s.handle.clone() {
        if let Some(rate) = swarm.rate {
            handle.set_rate(rate);
            let message = format!("Retargeting to {rate} requests/s");
            return Err((StatusCode::OK, json!({"success": true, "message": message})));
        }
        // Refused before anything changes: the run goes on as it was.
        if let Err(e) = super::admit(swarm.users, s.local_target) {
            let users = s.target_users;
            return refused(format!("{e:#}; the run goes on with {users} users"));
        }
        handle.set_users(swarm.users);
        s.target_users = swarm.users;
        let message = format!("Retargeting to {} users", swarm.users);
        return Err((StatusCode::OK, json!({"success": true, "message": message})));
    }
    if s.starting.is_some() {
        return Err((
            StatusCode::CONFLICT,
            json!({"success": false, "message": "a run is starting already"}),
        ));
    }
    let local_target = web.local_target(&swarm);
    let ceiling = crate::run::connection_ceiling(local_target);
    if let Some(r) = swarm.spawn_rate.filter(|&r| r > ceiling as f64) {
        return refused(format!(
            "spawn_rate {r} is above the {ceiling} users this host can hold: no spawn rate needs to be"
        ));
    }
    // The open model holds at most --max-connections, which the run checks itself.
    if swarm.rate.is_none() {
        if let Err(e) = super::admit(swarm.peak_users(), local_target) {
            return refused(format!("{e:#}"));
        }
    }
    let (started, answer) = oneshot::channel();
    let host = swarm.host.clone();
    if s.quitting || web.swarms.lock().map(|tx| tx.send(swarm)).is_err() {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"success": false, "message": "blast is quitting"}),
        ));
    }
    s.starting = Some(started);
    Ok((answer, host))
}

/// The answer to a request blast does not serve, or `None` to serve it: a foreign `Host` (DNS
/// rebinding), missing credentials, a state change that is not a POST from the UI's own
/// origin, or a body over [`MAX_BODY`].
fn refuse(web: &Web, req: &Request<Incoming>, peer: SocketAddr) -> Option<Reply> {
    let headers = req.headers();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host = header(header::HOST);
    if let Some(host) = host.filter(|h| !web.host_allowed(h)) {
        let message = format!(
            "Host {host:?} is not this web UI's: it answers its own address and localhost (add a name with --web-allowed-host)"
        );
        return Some(reply(StatusCode::FORBIDDEN, "text/plain", message));
    }
    if let Some(expected) = &web.auth {
        let given = headers.get(header::AUTHORIZATION);
        let matches = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())));
        if !matches {
            if given.is_some() {
                let n = web.failed_logins.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!("blast web: wrong credentials from {peer} ({n} failed attempts so far)");
            }
            let mut r = reply(StatusCode::UNAUTHORIZED, "text/plain", "credentials needed");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"blast\""),
            );
            return Some(r);
        }
    }
    if STATE_CHANGING.contains(&req.uri().path()) {
        if req.method() != Method::POST {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "this route changes state: use POST",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return Some(r);
        }
        // Browsers name the page a request comes from; scripts send neither header.
        let from = header(header::ORIGIN).or_else(|| header(header::REFERER));
        if let Some(from) = from.filter(|f| !same_origin(f, host)) {
            let message = format!("cross-origin request from {from:?} refused");
            return Some(reply(StatusCode::FORBIDDEN, "text/plain", message));
        }
    }
    let length = header(header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if length.is_some_and(|l| l > MAX_BODY) {
        return Some(too_large());
    }
    None
}

/// Whether `url` (an `Origin`, or a `Referer`'s start) is this UI's own page, reached as `host`.
fn same_origin(url: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // https: the UI behind a TLS-terminating proxy that keeps the Host.
    matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
}

fn too_large() -> Reply {
    let message = format!("request body over {} KiB", MAX_BODY / 1024);
    let mut r = reply(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", message);
    // The body was not read: the connection cannot carry another request.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The CSV endpoints of Locust and blast's downloads: the current run's own files, as written.
fn download(web: &Web, path: &str) -> Reply {
    let Some(files) = lock(&web.state).files.clone() else {
        return reply(StatusCode::NOT_FOUND, "text/plain", "no run yet");
    };
    let csv = |suffix: &str| {
        let mut name = files.csv.clone().into_os_string();
        name.push(format!("_{suffix}.csv"));
        (PathBuf::from(name), "text/csv")
    };
    let (file, content_type) = match path {
        "/stats/requests/csv" => csv("stats"),
        "/stats/failures/csv" => csv("failures"),
        "/exceptions/csv" => csv("exceptions"),
        "/stats/requests_full_history/csv" => csv("stats_history"),
        "/blast/history/csv" => csv("blast_history"),
        "/blast/record.json" => (files.json.clone(), "application/json"),
        "/blast/report.html" => (files.html.clone(), "text/html; charset=utf-8"),
        "/blast/latency.hlog" => (files.hdr_log.clone(), "text/plain"),
        _ => return reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
    };
    match std::fs::read(&file) {
        Ok(bytes) => {
            let mut r = reply(StatusCode::OK, content_type, bytes);
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if let Ok(v) = format!("attachment; filename=\"{name}\"").parse() {
                r.headers_mut()
                    .insert(hyper::header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(_) => reply(StatusCode::NOT_FOUND, "text/plain", "not written yet"),
    }
}
