//! The web UI's HTTP side: the page, Locust's API, blast's event stream and the downloads.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use super::{lock, Swarm, Web};

/// The page, with its script and styles; embedded, so it works offline.
const PAGE: &str = include_str!("page.html");

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
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (web, defaults) = (web.clone(), defaults.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (web, defaults) = (web.clone(), defaults.clone());
                    async move { Ok::<_, hyper::Error>(respond(&web, &defaults, req).await) }
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

async fn respond(web: &Web, defaults: &Value, req: Request<Incoming>) -> Reply {
    if let Some(expected) = &web.auth {
        let given = req.headers().get(hyper::header::AUTHORIZATION);
        if given.and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            let mut r = reply(StatusCode::UNAUTHORIZED, "text/plain", "credentials needed");
            if let Ok(v) = "Basic realm=\"blast\"".parse() {
                r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
    }
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        (Method::POST, "/swarm") => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let form = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
            json_reply(&swarm(web, &form))
        }
        (Method::GET | Method::POST, "/stop") => {
            if let Some(handle) = &lock(&web.state).handle {
                handle.stop();
            }
            json_reply(&json!({"success": true, "message": "Test stopped"}))
        }
        (Method::GET | Method::POST, "/stats/reset") => {
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

/// `POST /swarm`: starts a run, or retargets the running one's user count.
fn swarm(web: &Web, form: &str) -> Value {
    let field = |key: &str| {
        form.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.replace('+', " "))
            .map(|v| {
                percent_encoding::percent_decode_str(&v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .filter(|v| !v.trim().is_empty())
    };
    let rate = match field("rate").map(|r| r.trim().parse::<f64>()) {
        Some(Ok(r)) if r.is_finite() && r > 0.0 => Some(r),
        Some(_) => return json!({"success": false, "message": "rate must be above 0"}),
        None => None,
    };
    let users = match field("user_count").map(|u| u.trim().parse::<u64>()) {
        Some(Ok(u)) if u > 0 => u,
        None if rate.is_some() => 1,
        _ => {
            return json!({"success": false, "message": "user_count must be a whole number from 1"})
        }
    };
    let running = lock(&web.state).handle.clone();
    if let Some(handle) = running {
        if let Some(rate) = rate {
            handle.set_rate(rate);
            return json!({"success": true, "message": format!("Retargeting to {rate} requests/s")});
        }
        handle.set_users(users);
        lock(&web.state).target_users = users;
        return json!({"success": true, "message": format!("Retargeting to {users} users")});
    }
    let stages = match field("stages").map(|t| crate::args::parse_user_stages(t.trim())) {
        Some(Ok(shape)) => Some(shape),
        Some(Err(e)) => return json!({"success": false, "message": e}),
        None => None,
    };
    let spawn_rate = match field("spawn_rate").map(|r| r.trim().parse::<f64>()) {
        Some(Ok(r)) if r.is_finite() && r > 0.0 => Some(r),
        Some(_) => return json!({"success": false, "message": "spawn_rate must be above 0"}),
        None => None,
    };
    let run_time = match field("run_time").map(|t| blast_scenarios::parse_duration(t.trim())) {
        Some(Ok(t)) if !t.is_zero() => Some(t),
        Some(_) => {
            return json!({"success": false, "message": "run_time must be a duration such as 30s or 5m"})
        }
        None => None,
    };
    let swarm = Swarm {
        users,
        spawn_rate,
        host: field("host"),
        run_time,
        rate,
        stages,
    };
    match web.swarms.lock().map(|tx| tx.send(swarm)) {
        Ok(Ok(())) => {
            json!({"success": true, "message": "Swarming started", "host": field("host")})
        }
        _ => json!({"success": false, "message": "blast is quitting"}),
    }
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
