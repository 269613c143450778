//! The server: accept loop, per-connection HTTP/1.1 service and fault knobs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::eucora::Api;

/// Added latency before each response.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Latency {
    /// Answer at once.
    #[default]
    None,
    /// The same delay for every response.
    Fixed(Duration),
    /// A delay drawn uniformly from `min..=max` for each response.
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
}

/// A window, measured from server start, during which no request is answered: requests that
/// arrive in it are held until it ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stall {
    /// When the stall begins, after server start.
    pub after: Duration,
    /// How long it lasts.
    pub duration: Duration,
}

/// The server's knobs. The default is a plain fast server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Added latency per response. Default: none.
    pub latency: Latency,
    /// A stall window. Default: none.
    pub stall: Option<Stall>,
    /// Share of requests (0.0 to 1.0) answered with 500, spread exactly. Default: 0.
    pub error_rate: f64,
    /// Close each connection after this many responses (`Connection: close`). Default: never.
    pub close_after: Option<u64>,
    /// Server threads. Default (0): one.
    pub threads: usize,
    /// Extra latency per route, to imitate backend work: `(path prefix, latency)`, e.g.
    /// `("/api/v1/deployments/", Latency::Fixed(20 ms))`. The first matching prefix applies,
    /// on top of `latency`. Default: none.
    pub route_latency: Vec<(String, Latency)>,
    /// CAB approvals kept pending: when decisions leave fewer, deployments from other teams
    /// arrive. Default: 100, the plan's "100+ approvals pending"; 0 lets the backlog drain.
    pub cab_backlog: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            latency: Latency::default(),
            stall: None,
            error_rate: 0.0,
            close_after: None,
            threads: 0,
            route_latency: Vec::new(),
            cab_backlog: 100,
        }
    }
}

struct Shared {
    config: Config,
    api: Api,
    start: Instant,
    served: AtomicU64,
    connections: AtomicU64,
}

/// A running server; it stops when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and starts serving on background threads.
    pub fn start(addr: SocketAddr, config: Config) -> io::Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("blast-target")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            api: Api::new(config.cab_backlog),
            config,
            start: Instant::now(),
            served: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let (shutdown, stopped) = oneshot::channel();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("blast-target-accept".into())
            .spawn(move || {
                runtime.block_on(accept(listener, state, stopped));
                // Open connections are dropped with the runtime.
                runtime.shutdown_background();
            })?;
        Ok(Server {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` of the server, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests handled so far (every request the server began to answer).
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// The EUCORA API's integrity counts (what `GET /api/v1/integrity/` returns).
    pub fn integrity(&self) -> serde_json::Value {
        self.shared.api.integrity()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors or a reset during accept: keep serving the others.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            _ = &mut stopped => return,
        };
        let _ = stream.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            let on_conn = Arc::new(AtomicU64::new(0));
            let service = service_fn(move |req| {
                let shared = shared.clone();
                let nth = on_conn.fetch_add(1, Ordering::Relaxed) + 1;
                async move { Ok::<_, hyper::Error>(respond(&shared, req, nth).await) }
            });
            // Peers hanging up mid-request are normal under load; nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    shared: &Shared,
    req: Request<Incoming>,
    nth_on_conn: u64,
) -> Response<Full<Bytes>> {
    let n = shared.served.fetch_add(1, Ordering::Relaxed) + 1;
    let config = &shared.config;
    if let Some(stall) = config.stall {
        let now = shared.start.elapsed();
        let end = stall.after + stall.duration;
        if now >= stall.after && now < end {
            tokio::time::sleep(end - now).await;
        }
    }
    delay(config.latency, n).await;
    let path = req.uri().path();
    if let Some((_, latency)) = config
        .route_latency
        .iter()
        .find(|(p, _)| path.starts_with(p))
    {
        delay(*latency, n).await;
    }
    // Request n fails when floor(n * rate) steps up: exactly `rate` of all requests, spread out.
    let fail = config.error_rate > 0.0
        && (n as f64 * config.error_rate).floor() > ((n - 1) as f64 * config.error_rate).floor();
    let mut response = if fail {
        text(StatusCode::INTERNAL_SERVER_ERROR, "injected error")
    } else {
        route(&shared.api, req).await
    };
    if config.close_after.is_some_and(|limit| nth_on_conn >= limit) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Sleeps for `latency`; `n` spreads uniform delays deterministically.
async fn delay(latency: Latency, n: u64) {
    match latency {
        Latency::None => {}
        Latency::Fixed(d) => tokio::time::sleep(d).await,
        Latency::Uniform { min, max } => {
            let span = max.saturating_sub(min).as_nanos() as u64;
            let jitter = if span == 0 { 0 } else { mix(n) % (span + 1) };
            tokio::time::sleep(min + Duration::from_nanos(jitter)).await;
        }
    }
}

async fn route(api: &Api, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path.starts_with("/api/v1/") {
        return api.handle(req).await;
    }
    if path == "/" {
        return text(StatusCode::OK, "ok");
    }
    if path == "/echo" {
        return match req.into_body().collect().await {
            Ok(body) => Response::new(Full::new(body.to_bytes())),
            Err(_) => text(StatusCode::BAD_REQUEST, "unreadable body"),
        };
    }
    if path == "/cookies" {
        return cookies(&req);
    }
    if let Some((name, value)) = path
        .strip_prefix("/cookies/set/")
        .and_then(|kv| kv.split_once('/'))
    {
        // httpbin's shape: set a cookie, answer with the name and value set.
        let mut response = text(StatusCode::OK, "cookie set");
        if let Ok(v) = HeaderValue::from_str(&format!("{name}={value}; Path=/")) {
            response.headers_mut().insert(SET_COOKIE, v);
        }
        return response;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        if let Some(status) = code.parse().ok().and_then(|c| StatusCode::from_u16(c).ok()) {
            return text(status, status.canonical_reason().unwrap_or(""));
        }
    }
    text(StatusCode::NOT_FOUND, "not found")
}

/// `GET /cookies`: the cookies the client sent, as JSON (`{"cookies": {"name": "value"}}`).
fn cookies(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let sent: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let body = serde_json::json!({ "cookies": sent }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A cheap, well-spread hash of a counter (splitmix64's finaliser), for latency jitter.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(server: &Server, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn routes_answer_and_are_counted() {
        let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
        assert!(get(&server, "/").starts_with("HTTP/1.1 200"));
        assert!(get(&server, "/status/503").starts_with("HTTP/1.1 503"));
        assert!(get(&server, "/nope").starts_with("HTTP/1.1 404"));
        assert_eq!(server.served(), 3);
    }

    #[test]
    fn error_rate_is_exact() {
        let config = Config {
            error_rate: 0.25,
            ..Config::default()
        };
        let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
        let errors = (0..8)
            .filter(|_| get(&server, "/").starts_with("HTTP/1.1 500"))
            .count();
        assert_eq!(errors, 2);
    }

    #[test]
    fn close_after_marks_the_nth_response() {
        let config = Config {
            close_after: Some(1),
            ..Config::default()
        };
        let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
        assert!(get(&server, "/")
            .to_ascii_lowercase()
            .contains("connection: close"));
    }
}
