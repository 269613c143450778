//! The HTTP/2 client, through the `h2` crate: a worker's users share its connections, up to
//! `--streams` users on one (one stream each in flight), and each user keeps its seat from
//! request to request as an HTTP/1.1 user keeps its connection.

use bytes::Bytes;
use h2::client::SendRequest;
use h2::Reason;
use http::header::{HeaderName, HeaderValue};
use http::uri::{Scheme, Uri};
use http::{Method, Request};
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_rustls::client::TlsStream;

use super::hyper::{Counted, Wire};
use super::{io_failure, Broken, ConnectFailure, Connection, Connector, Exchange, Opened};
use super::{Protocol, Received, Transport};
use crate::stats::FailureClass;

/// Receive window per stream: a response up to this size never waits for blast to grant more,
/// so the server, not flow control, sets the pace (nghttp2's h2load uses 1 GiB; browsers
/// 6-16 MiB). It is credit, not memory: blast reads each chunk as it arrives.
const STREAM_WINDOW: u32 = 4 << 20;
/// Receive window of the whole connection, shared by its streams.
const CONNECTION_WINDOW: u32 = 64 << 20;

/// Headers HTTP/2 forbids (RFC 9113, 8.2.2); blast's requests carry some of them for
/// HTTP/1.1. `Host` becomes the `:authority` pseudo-header instead.
const HTTP1_ONLY: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "host",
];

/// A worker's HTTP/2 connections, each with the users seated on it.
pub(crate) struct H2Pool {
    /// Users per connection at most (`--streams`); the server's own limit may lower it.
    streams: usize,
    links: RefCell<Vec<Rc<Link>>>,
}

/// One HTTP/2 connection of a pool.
struct Link {
    state: RefCell<State>,
    /// Wakes the users waiting for this connection to open.
    opened: Notify,
    /// Bytes through the socket; those not yet charged to a request are charged to the next
    /// one to finish, so the run's totals are exact and the split among names close.
    wire: Rc<Wire>,
    charged: Cell<(u64, u64)>,
    seated: Cell<usize>,
    /// Users this connection takes: `streams`, or the server's limit once it is known.
    seats: Cell<usize>,
}

enum State {
    Opening,
    Open(SendRequest<Bytes>),
    Failed(ConnectFailure),
    /// The server sent GOAWAY or the connection ended: nobody new sits here.
    Closed,
}

impl H2Pool {
    /// A pool seating up to `streams` users on one connection.
    pub fn new(streams: usize) -> H2Pool {
        H2Pool {
            streams: streams.max(1),
            links: RefCell::new(Vec::new()),
        }
    }

    /// A seat for one user: on a connection with room (waiting for it if it is still opening),
    /// else on a new one. What opening cost is returned to the user who opened it.
    async fn seat<S: Transport>(
        &self,
        connector: &Connector,
    ) -> Result<(Rc<Link>, Option<Opened>), ConnectFailure> {
        loop {
            let free = {
                let mut links = self.links.borrow_mut();
                links.retain(|l| matches!(*l.state.borrow(), State::Opening | State::Open(_)));
                links
                    .iter()
                    .find(|l| l.seated.get() < l.seats.get())
                    .cloned()
            };
            let Some(link) = free else {
                return self.open::<S>(connector).await;
            };
            link.seated.set(link.seated.get() + 1);
            link.wait_open().await;
            let state = link.state.borrow();
            match &*state {
                State::Open(_) if link.seated.get() <= link.seats.get() => {
                    drop(state);
                    return Ok((link, None));
                }
                State::Failed(failure) => {
                    let failure = failure.clone();
                    drop(state);
                    link.leave();
                    return Err(failure);
                }
                // Closed meanwhile, or seated before the server's limit was known and above
                // it: look again.
                _ => {
                    drop(state);
                    link.leave();
                }
            }
        }
    }

    /// Opens a new connection in the pool, seated by its opener.
    async fn open<S: Transport>(
        &self,
        connector: &Connector,
    ) -> Result<(Rc<Link>, Option<Opened>), ConnectFailure> {
        let link = Rc::new(Link {
            state: RefCell::new(State::Opening),
            opened: Notify::new(),
            wire: Rc::new(Wire::default()),
            charged: Cell::new((0, 0)),
            seated: Cell::new(1),
            seats: Cell::new(self.streams),
        });
        self.links.borrow_mut().push(link.clone());
        let result = link.handshake::<S>(connector, self.streams).await;
        if let Err(failure) = &result {
            *link.state.borrow_mut() = State::Failed(failure.clone());
        }
        // After the state is set: the users waiting for this connection read it when woken.
        link.opened.notify_waiters();
        match result {
            Ok(opened) => Ok((link, Some(opened))),
            Err(failure) => {
                link.leave();
                Err(failure)
            }
        }
    }
}

impl Link {
    /// Opens the transport, runs the HTTP/2 handshake and waits for the server's settings (a
    /// PING's answer comes after them), so its stream limit is known before users sit down.
    async fn handshake<S: Transport>(
        self: &Rc<Self>,
        connector: &Connector,
        streams: usize,
    ) -> Result<Opened, ConnectFailure> {
        let (stream, opened) = S::open(connector).await?;
        let io = Counted {
            stream,
            wire: self.wire.clone(),
        };
        let not_h2 = |e: h2::Error| ConnectFailure {
            class: FailureClass::Protocol,
            refused: false,
            reason: format!("the server did not answer in HTTP/2 ({e})"),
        };
        let (send, mut conn) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(not_h2)?;
        let mut ping = conn
            .ping_pong()
            .expect("a new connection has its ping handle");
        let link = self.clone();
        // The driver ends when the server or the network closes the connection, or when the
        // pool and every user let go of it.
        tokio::task::spawn_local(async move {
            let _ = conn.await;
            link.close();
        });
        let answered = tokio::time::timeout(connector.timeout, ping.ping(h2::Ping::opaque()));
        match answered.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(not_h2(e)),
            Err(_) => {
                return Err(ConnectFailure {
                    class: FailureClass::Protocol,
                    refused: false,
                    reason: "the server did not answer the HTTP/2 preface in time".into(),
                })
            }
        }
        self.seats
            .set(streams.min(send.current_max_send_streams()).max(1));
        *self.state.borrow_mut() = State::Open(send);
        Ok(opened)
    }

    async fn wait_open(&self) {
        loop {
            // Registered before the check: a notification between the two is not lost.
            let opened = self.opened.notified();
            if !matches!(*self.state.borrow(), State::Opening) {
                return;
            }
            opened.await;
        }
    }

    fn leave(&self) {
        self.seated.set(self.seated.get() - 1);
    }

    fn close(&self) {
        let mut state = self.state.borrow_mut();
        if matches!(*state, State::Open(_)) {
            *state = State::Closed;
        }
    }

    /// Bytes written since the last charge, now charged.
    fn take_written(&self) -> u64 {
        let (written, read) = self.charged.get();
        self.charged.set((self.wire.written.get(), read));
        self.wire.written.get() - written
    }

    /// Bytes read since the last charge, now charged.
    fn take_read(&self) -> u64 {
        let (written, read) = self.charged.get();
        self.charged.set((written, self.wire.read.get()));
        self.wire.read.get() - read
    }
}

/// One user's seat on a shared HTTP/2 connection.
pub(crate) struct H2Connection<S> {
    link: Rc<Link>,
    send: SendRequest<Bytes>,
    scheme: Scheme,
    /// The last request converted, as wire bytes and as an HTTP/2 head: a user that sends the
    /// same request again (every `blast URL` user) skips the parse.
    last: Option<(Vec<u8>, Head)>,
    transport: PhantomData<S>,
}

/// An HTTP/2 request head and the body that follows it.
struct Head {
    method: Method,
    uri: Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Head {
    fn request(&self) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

impl<S> Drop for H2Connection<S> {
    fn drop(&mut self) {
        self.link.leave();
    }
}

impl<S: Transport> H2Connection<S> {
    /// The HTTP/2 request for the wire bytes `request`, converted once and reused while the
    /// user sends the same bytes.
    fn head(&mut self, request: &[u8]) -> Result<(Request<()>, Bytes), FailureClass> {
        if !matches!(&self.last, Some((wire, _)) if wire[..] == *request) {
            self.last = Some((request.to_vec(), from_wire(request, &self.scheme)?));
        }
        let (_, head) = self.last.as_ref().expect("converted above");
        Ok((head.request(), head.body.clone()))
    }

    /// The most concurrent streams the server allows on this connection (its
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`; unlimited reads as `usize::MAX`).
    pub fn server_streams(&self) -> usize {
        self.send.current_max_send_streams()
    }

    /// Sends one request on a new stream and reads its response.
    async fn stream(
        &mut self,
        head: Request<()>,
        body: Bytes,
        into: &mut Received,
    ) -> Result<(u16, Option<Duration>), Failure> {
        poll_fn(|cx| self.send.poll_ready(cx))
            .await
            .map_err(|e| Failure::of(&e, Stage::Unsent))?;
        let (response, mut stream) = self
            .send
            .send_request(head, body.is_empty())
            .map_err(|e| Failure::of(&e, Stage::Unsent))?;
        let stalled = match body.is_empty() {
            true => None,
            false => send_body(&mut stream, body).await?,
        };
        let response = response.await.map_err(|e| Failure::of(&e, Stage::Sent))?;
        let status = response.status().as_u16();
        into.status = status;
        for (name, value) in response.headers() {
            into.header(name.as_str().as_bytes(), value.as_bytes());
        }
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| Failure::of(&e, Stage::Answered))?;
            into.body_bytes(&chunk);
            // Given back at once: the window is credit for data already read.
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        Ok((status, stalled))
    }
}

impl<S: Transport> Connection for H2Connection<S> {
    async fn open(connector: &Connector) -> Result<(Self, Option<Opened>), ConnectFailure> {
        let (link, opened) = connector.h2.seat::<S>(connector).await?;
        let send = match &*link.state.borrow() {
            State::Open(send) => send.clone(),
            _ => unreachable!("a seat is given on an open connection only"),
        };
        let scheme = if S::TLS { Scheme::HTTPS } else { Scheme::HTTP };
        let conn = H2Connection {
            link,
            send,
            scheme,
            last: None,
            transport: PhantomData,
        };
        Ok((conn, opened))
    }

    fn write_mark(&self) -> u64 {
        0
    }

    // Streams share the socket: each request is charged what went out since the last charge.
    fn written_since(&self, _mark: u64) -> u64 {
        self.link.take_written()
    }

    /// Whether the connection still takes new streams: no GOAWAY, not closed.
    async fn is_usable(&mut self) -> bool {
        let open = matches!(*self.link.state.borrow(), State::Open(_));
        if open && poll_fn(|cx| self.send.poll_ready(cx)).await.is_ok() {
            return true;
        }
        self.link.close();
        false
    }

    async fn send(&mut self, request: &[u8], into: &mut Received) -> Result<Exchange, Broken> {
        into.clear();
        let result = match self.head(request) {
            Ok((head, body)) => self.stream(head, body, into).await,
            Err(class) => Err(Failure::of_class(class, Stage::Unsent)),
        };
        let sent = self.link.take_written();
        match result {
            Ok((status, flow_stall)) => Ok(Exchange {
                status,
                sent,
                received: self.link.take_read(),
                flow_stall,
            }),
            Err(f) => {
                // An error of the whole connection (a GOAWAY, the socket closed), not of this
                // stream alone: nobody new sits on it, and a retry goes to another connection
                // even before the connection's driver has seen the end.
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                if let std::task::Poll::Ready(Err(_)) = self.send.poll_ready(&mut cx) {
                    self.link.close();
                }
                Err(Broken {
                    class: f.class,
                    written: sent,
                    sent: f.stage != Stage::Unsent,
                    answered: f.stage == Stage::Answered,
                    unprocessed: f.unprocessed,
                    reason: f.reason,
                })
            }
        }
    }
}

/// Bodies up to this size are handed to h2 whole, with the request head: they go out in the
/// same write (h2 sends them as soon as the stream opens and the window allows). Larger ones
/// are sent as the server grants window, so its waits can be counted. HTTP/2's smallest
/// maximum frame size.
const ONE_FRAME: usize = 16 * 1024;

/// Sends a request body as the server's flow-control window allows; how long it waited for
/// window, if it did. The wait for the stream to open (h2 grants no capacity before) is not
/// one: only the waits after the first grant are flow control.
async fn send_body(
    stream: &mut h2::SendStream<Bytes>,
    mut body: Bytes,
) -> Result<Option<Duration>, Failure> {
    let sent = |e: h2::Error| Failure::of(&e, Stage::Sent);
    if body.len() <= ONE_FRAME {
        stream.send_data(body, true).map_err(sent)?;
        return Ok(None);
    }
    let mut waited = None;
    let mut opened = false;
    stream.reserve_capacity(body.len());
    while !body.is_empty() {
        let mut room = stream.capacity();
        if room == 0 {
            let started = Instant::now();
            room = match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(sent(e)),
                None => return Err(Failure::of_class(FailureClass::Reset, Stage::Sent)),
            };
            if opened {
                *waited.get_or_insert(Duration::ZERO) += started.elapsed();
            }
        }
        opened = true;
        let chunk = body.split_to(room.min(body.len()));
        stream.send_data(chunk, body.is_empty()).map_err(sent)?;
    }
    Ok(waited)
}

/// How far a request got before it failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No stream was opened: nothing went to the server.
    Unsent,
    /// The stream was opened; no response yet.
    Sent,
    /// The response's head arrived.
    Answered,
}

/// Why a stream failed.
struct Failure {
    class: FailureClass,
    reason: Option<&'static str>,
    stage: Stage,
    /// The server did not process the request: it never got it, or refused the stream.
    unprocessed: bool,
}

impl Failure {
    /// The failure an `h2` error stands for at `stage`. REFUSED_STREAM says the server did not
    /// process the stream (RFC 9113, 8.7); a GOAWAY does only for streams above its last
    /// stream id, which h2 does not tell, so those are left to the retry rule.
    fn of(e: &h2::Error, stage: Stage) -> Failure {
        let reason = e.reason();
        let class = if e.is_go_away() && e.is_remote() {
            FailureClass::GoAway
        } else if e.is_reset() && e.is_remote() {
            FailureClass::StreamReset
        } else if let Some(io) = e.get_io() {
            io_failure(io)
        } else {
            FailureClass::Protocol
        };
        Failure {
            reason: reason.map(reason_name),
            unprocessed: stage == Stage::Unsent
                || (class == FailureClass::StreamReset
                    && reason == Some(Reason::REFUSED_STREAM)
                    && stage == Stage::Sent),
            ..Failure::of_class(class, stage)
        }
    }

    fn of_class(class: FailureClass, stage: Stage) -> Failure {
        Failure {
            class,
            reason: None,
            stage,
            unprocessed: false,
        }
    }
}

/// An HTTP/2 error code's name (RFC 9113, 7).
fn reason_name(reason: Reason) -> &'static str {
    const NAMES: [(Reason, &str); 14] = [
        (Reason::NO_ERROR, "NO_ERROR"),
        (Reason::PROTOCOL_ERROR, "PROTOCOL_ERROR"),
        (Reason::INTERNAL_ERROR, "INTERNAL_ERROR"),
        (Reason::FLOW_CONTROL_ERROR, "FLOW_CONTROL_ERROR"),
        (Reason::SETTINGS_TIMEOUT, "SETTINGS_TIMEOUT"),
        (Reason::STREAM_CLOSED, "STREAM_CLOSED"),
        (Reason::FRAME_SIZE_ERROR, "FRAME_SIZE_ERROR"),
        (Reason::REFUSED_STREAM, "REFUSED_STREAM"),
        (Reason::CANCEL, "CANCEL"),
        (Reason::COMPRESSION_ERROR, "COMPRESSION_ERROR"),
        (Reason::CONNECT_ERROR, "CONNECT_ERROR"),
        (Reason::ENHANCE_YOUR_CALM, "ENHANCE_YOUR_CALM"),
        (Reason::INADEQUATE_SECURITY, "INADEQUATE_SECURITY"),
        (Reason::HTTP_1_1_REQUIRED, "HTTP_1_1_REQUIRED"),
    ];
    NAMES
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or("an unknown error code", |(_, name)| name)
}

/// The HTTP/2 request for wire bytes written as HTTP/1.1 (scripts write every request that
/// way): the head with `Host` as `:authority` and HTTP/1.1's connection headers left out, and
/// the body. A request that does not convert is the script's fault, counted as protocol.
fn from_wire(wire: &[u8], scheme: &Scheme) -> Result<Head, FailureClass> {
    fn bad<E>(_: E) -> FailureClass {
        FailureClass::Protocol
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = parsed.parse(wire) else {
        return Err(FailureClass::Protocol);
    };
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Err(FailureClass::Protocol);
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(bad)?;
    let mut authority = None;
    let mut map = http::HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            authority = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // A chunked body would need decoding first; blast's requests carry a length.
            return Err(FailureClass::Protocol);
        } else if !HTTP1_ONLY.iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(bad)?;
            map.append(name, HeaderValue::from_bytes(h.value).map_err(bad)?);
        }
    }
    let authority = authority.ok_or(FailureClass::Protocol)?;
    let uri = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(bad)?;
    Ok(Head {
        method,
        uri,
        headers: map,
        body: Bytes::copy_from_slice(&wire[len..]),
    })
}

/// The protocol a TLS connection agreed on by ALPN (HTTP/1.1 when the server chose none).
pub(crate) fn negotiated(stream: &TlsStream<tokio::net::TcpStream>) -> Protocol {
    match stream.get_ref().1.alpn_protocol() {
        Some(p) if p == Protocol::Http2.alpn() => Protocol::Http2,
        _ => Protocol::Http1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_requests_become_http2_heads() {
        let wire = b"POST /a?b=1 HTTP/1.1\r\nHost: example.com:8443\r\nConnection: keep-alive\r\nContent-Length: 2\r\nX-Id: 7\r\n\r\nhi";
        let head = from_wire(wire, &Scheme::HTTPS).unwrap().request();
        assert_eq!(head.method(), Method::POST);
        assert_eq!(head.uri().to_string(), "https://example.com:8443/a?b=1");
        let names: Vec<_> = head.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-length", "x-id"]);
        assert_eq!(&from_wire(wire, &Scheme::HTTPS).unwrap().body[..], b"hi");
        let chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert!(matches!(
            from_wire(chunked, &Scheme::HTTP),
            Err(FailureClass::Protocol)
        ));
        let no_host = b"GET / HTTP/1.1\r\n\r\n";
        assert!(from_wire(no_host, &Scheme::HTTP).is_err());
    }

    #[test]
    fn error_codes_read_by_name() {
        assert_eq!(reason_name(Reason::REFUSED_STREAM), "REFUSED_STREAM");
        assert_eq!(reason_name(Reason::from(0xff)), "an unknown error code");
    }
}
