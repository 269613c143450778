//! The server: accept loop, per-connection HTTP/1.1 service and fault knobs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, COOKIE, LOCATION,
    SET_COOKIE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

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

/// An application served beside the test routes, under a path prefix of its own (the P4.3
/// pack's EUCORA API is one).
pub trait App: Send + Sync + std::fmt::Debug {
    /// The path prefix it answers, e.g. `/api/v1/`.
    fn prefix(&self) -> &str;
    /// Its answer to one request, whose body has been read.
    fn handle(&self, req: Request<Bytes>) -> Response<Full<Bytes>>;
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
    /// Applications served under their prefixes, before the test routes. Default: none.
    pub apps: Vec<Arc<dyn App>>,
    /// Close a connection idle this long, as gunicorn's `keepalive`, nginx's
    /// `keepalive_timeout` and Node's `keepAliveTimeout` do. From 1 s up it is announced in a
    /// `Keep-Alive: timeout=N` header, as Node does; shorter timeouts close unannounced.
    /// Default: never.
    pub keep_alive_timeout: Option<Duration>,
    /// Serve TLS (`https://`) with this certificate. Default: plain HTTP.
    pub tls: Option<TlsIdentity>,
    /// Bind with `SO_REUSEPORT`, so that a test can hold the port with a socket of its own
    /// (bound, not listening: connections are refused) while the server is down, and start it
    /// again on the same port without ever freeing it. Default: false.
    pub reuse_port: bool,
}

/// A certificate and its private key, PEM.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    /// The certificate (what clients pass to `--ca-cert` when it is self-signed).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl TlsIdentity {
    /// A new self-signed certificate for `localhost`, `127.0.0.1` and `::1`.
    #[cfg(feature = "self-signed")]
    pub fn self_signed() -> TlsIdentity {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let cert = rcgen::generate_simple_self_signed(names)
            .expect("a self-signed certificate for fixed names can always be made");
        TlsIdentity {
            cert_pem: cert.cert.pem(),
            key_pem: cert.key_pair.serialize_pem(),
        }
    }

    fn acceptor(&self) -> io::Result<tokio_rustls::TlsAcceptor> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad =
            |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| bad(&e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| bad(&e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
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
            apps: Vec::new(),
            keep_alive_timeout: None,
            tls: None,
            reuse_port: false,
        }
    }
}

struct Shared {
    config: Config,
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
        let acceptor = config.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
        let listener = runtime.block_on(async {
            if !config.reuse_port {
                return TcpListener::bind(addr).await;
            }
            let socket = match addr {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
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
                runtime.block_on(accept(listener, acceptor, state, stopped));
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

    /// `http://ADDR` (`https://` with TLS) of the server, without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.shared.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Requests handled so far (every request the server began to answer).
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// The certificate served, with TLS.
    pub fn tls_identity(&self) -> Option<&TlsIdentity> {
        self.shared.config.tls.as_ref()
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

async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
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
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                // A failed handshake is the client's business (an untrusted certificate, say).
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        serve(shared, stream).await
                    }
                }
                None => serve(shared, stream).await,
            }
        });
    }
}

/// Serves one connection until the peer leaves, or it has been idle for the keep-alive
/// timeout.
async fn serve<S>(shared: Arc<Shared>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let idle = Arc::new(Idle {
        busy: AtomicU64::new(0),
        since_ms: AtomicU64::new(shared.start.elapsed().as_millis() as u64),
    });
    let on_conn = Arc::new(AtomicU64::new(0));
    let service = {
        let (shared, idle) = (shared.clone(), idle.clone());
        service_fn(move |req| {
            let (shared, idle) = (shared.clone(), idle.clone());
            let nth = on_conn.fetch_add(1, Ordering::Relaxed) + 1;
            idle.busy.fetch_add(1, Ordering::Relaxed);
            async move {
                let response = respond(&shared, req, nth).await;
                idle.since_ms
                    .store(shared.start.elapsed().as_millis() as u64, Ordering::Relaxed);
                idle.busy.fetch_sub(1, Ordering::Relaxed);
                Ok::<_, hyper::Error>(response)
            }
        })
    };
    // HTTP/1.1, or HTTP/2 when the client opens with its preface (h2c, `blast --http2`).
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Peers hanging up mid-request are normal under load; nothing to report.
    let Some(timeout) = shared.config.keep_alive_timeout else {
        let _ = conn.await;
        return;
    };
    loop {
        let since = Duration::from_millis(idle.since_ms.load(Ordering::Relaxed));
        let deadline = shared.start + since + timeout;
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep_until(deadline.into()) => {
                let quiet = shared.start.elapsed().saturating_sub(since) >= timeout;
                if idle.busy.load(Ordering::Relaxed) == 0 && quiet {
                    // An idle connection closes at once, as servers' idle timers do (HTTP/2:
                    // with a GOAWAY).
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                    return;
                }
            }
        }
    }
}

/// When a connection last finished a response, and whether one is under way.
struct Idle {
    busy: AtomicU64,
    since_ms: AtomicU64,
}

async fn respond(
    shared: &Shared,
    req: Request<Incoming>,
    nth_on_conn: u64,
) -> Response<Full<Bytes>> {
    let n = shared.served.fetch_add(1, Ordering::Relaxed) + 1;
    if req.uri().path() == "/served" {
        // The requests answered before this one: what a load run against it sent.
        let mut response = Response::new(Full::new(Bytes::from((n - 1).to_string())));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return response;
    }
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
        route(&config.apps, req).await
    };
    if config.close_after.is_some_and(|limit| nth_on_conn >= limit) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(secs) = config
        .keep_alive_timeout
        .map(|t| t.as_secs())
        .filter(|&s| s > 0)
    {
        if let Ok(v) = HeaderValue::from_str(&format!("timeout={secs}")) {
            response.headers_mut().insert("keep-alive", v);
        }
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

async fn route(apps: &[Arc<dyn App>], req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if let Some(app) = apps.iter().find(|a| path.starts_with(a.prefix())) {
        let (head, body) = req.into_parts();
        return match body.collect().await {
            Ok(body) => app.handle(Request::from_parts(head, body.to_bytes())),
            Err(_) => text(StatusCode::BAD_REQUEST, "unreadable body"),
        };
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
    if let Some(response) = redirect(&req) {
        return response;
    }
    if path == "/only-get" {
        return match *req.method() {
            Method::GET => text(StatusCode::OK, "ok"),
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET only"),
        };
    }
    if path == "/gzip" {
        return gzip(&req);
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

/// httpbin's redirects: `/redirect/N` redirects N times (302) before answering 200, and
/// `/redirect-to?url=U&status_code=S` redirects once to `U` with `S` (default 302).
fn redirect(req: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let path = req.uri().path();
    let (status, location) = if let Some(n) = path.strip_prefix("/redirect/") {
        match n.parse::<u32>().ok()? {
            0 => return Some(text(StatusCode::OK, "redirected")),
            n => (StatusCode::FOUND, format!("/redirect/{}", n - 1)),
        }
    } else if path == "/redirect-to" {
        let mut url = None;
        let mut status = StatusCode::FOUND;
        for (key, value) in req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
        {
            match key {
                "url" => {
                    url = Some(
                        percent_encoding::percent_decode_str(value)
                            .decode_utf8_lossy()
                            .into_owned(),
                    )
                }
                "status_code" => {
                    status = value
                        .parse()
                        .ok()
                        .and_then(|c| StatusCode::from_u16(c).ok())?
                }
                _ => {}
            }
        }
        (status, url?)
    } else {
        return None;
    };
    let mut response = text(status, "");
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_str(&location).ok()?);
    Some(response)
}

/// `GET /gzip`: a JSON body, gzip-compressed when the client accepts gzip (httpbin's shape).
fn gzip(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    use std::io::Write;
    let body = br#"{"gzipped": true, "id": 7}"#;
    let accepts = req
        .headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("gzip")));
    let mut response = if accepts {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = encoder.write_all(body);
        let mut r = Response::new(Full::new(Bytes::from(encoder.finish().unwrap_or_default())));
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Full::new(Bytes::from_static(body)))
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
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
