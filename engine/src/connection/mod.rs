//! Connections: the two HTTP/1.1 clients and the HTTP/2 client a worker can use, over plain
//! TCP or TLS.
//!
//! The protocol, the client and the transport are chosen once per run ([`Protocol`], [`Client`],
//! the target's scheme); the worker loop is generic over [`Connection`], so nothing branches on
//! them per request.

mod h2;
mod hyper;
pub(crate) mod raw;
mod tls;
mod transport;
mod uring;

use std::io;
use std::time::Duration;

use crate::script::MAX_KEPT_BODY;
use crate::stats::FailureClass;

pub(crate) use self::h2::negotiated;
pub(crate) use self::h2::{H2Connection, H2Pool};
pub(crate) use self::hyper::HyperConnection;
pub(crate) use self::raw::RawConnection;
pub(crate) use self::tls::with_alpn;
pub use self::tls::TlsOptions;
pub(crate) use self::transport::{ConnectFailure, Connector, Opened, Tcp, Transport};
pub(crate) use self::uring::{available as uring_available, submit_queued, Ring, UringStream};

/// Which HTTP/1.1 client sends the requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Client {
    /// Pre-encoded request bytes written straight to the socket; responses parsed with
    /// `httparse` and drained without buffering. The fastest path, and the smallest per
    /// connection.
    #[default]
    Raw,
    /// hyper's HTTP/1.1 client connection (`hyper::client::conn::http1`).
    Hyper,
}

/// The HTTP version a run speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Protocol {
    /// HTTP/1.1: one request at a time per connection.
    #[default]
    #[serde(rename = "h1")]
    Http1,
    /// HTTP/2: several users' requests multiplexed as streams on one connection.
    #[serde(rename = "h2")]
    Http2,
}

impl Protocol {
    /// The name users know: `HTTP/1.1` or `HTTP/2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }

    /// The protocol's ALPN identifier.
    pub(crate) fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::Http1 => b"http/1.1",
            Protocol::Http2 => b"h2",
        }
    }
}

/// How a worker's sockets send and receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Io {
    /// io_uring where this process may use it, else epoll.
    #[default]
    Auto,
    /// tokio's epoll reactor: a system call per send and per receive.
    Epoll,
    /// One io_uring ring per worker: a loop's sends and receives in one system call.
    Uring,
}

/// What one exchange produced when the server answered.
pub(crate) struct Exchange {
    /// Response status code.
    pub status: u16,
    /// Bytes written for this request.
    pub sent: u64,
    /// Bytes read for this response.
    pub received: u64,
    /// HTTP/2: how long the request body waited for the server's flow-control window.
    pub flow_stall: Option<Duration>,
}

/// What a user keeps of a response besides its status; reused from request to request.
#[derive(Default)]
pub(crate) struct Received {
    /// Keep the body of the next response (set before each send).
    pub keep: bool,
    /// The body, when kept, up to [`MAX_KEPT_BODY`].
    pub body: Vec<u8>,
    /// Whether the kept body was cut at [`MAX_KEPT_BODY`].
    pub truncated: bool,
    /// `Set-Cookie` header values.
    pub set_cookies: Vec<String>,
    /// Length of the last response's body (kept or not).
    pub body_len: u64,
    /// The status of the response being read; set before its headers.
    pub status: u16,
    /// The `Location` header of a redirect (3xx) response.
    pub location: Option<String>,
    /// The idle timeout the server announced in `Keep-Alive: timeout=N`.
    pub keep_alive: Option<Duration>,
    /// The kept body is compressed (`Content-Encoding: gzip` or `deflate`).
    pub encoding: Option<Encoding>,
}

/// A compression a kept body can be decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gzip,
    Deflate,
}

impl Received {
    /// Forgets the previous response.
    fn clear(&mut self) {
        self.body.clear();
        self.truncated = false;
        self.set_cookies.clear();
        self.body_len = 0;
        self.location = None;
        self.keep_alive = None;
        self.encoding = None;
    }

    /// Keeps body bytes if asked to, up to the limit.
    fn body_bytes(&mut self, data: &[u8]) {
        self.body_len += data.len() as u64;
        if !self.keep {
            return;
        }
        let room = MAX_KEPT_BODY - self.body.len();
        self.truncated |= data.len() > room;
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Notes what a user or the connection needs from a response header.
    fn header(&mut self, name: &[u8], value: &[u8]) {
        let text = || String::from_utf8_lossy(value).into_owned();
        if name.eq_ignore_ascii_case(b"set-cookie") {
            self.set_cookies.push(text());
        } else if (300..400).contains(&self.status) && name.eq_ignore_ascii_case(b"location") {
            self.location = Some(text());
        } else if name.eq_ignore_ascii_case(b"keep-alive") {
            self.keep_alive = keep_alive_timeout(value);
        } else if self.keep && name.eq_ignore_ascii_case(b"content-encoding") {
            let value = value.trim_ascii();
            self.encoding = if value.eq_ignore_ascii_case(b"gzip") {
                Some(Encoding::Gzip)
            } else if value.eq_ignore_ascii_case(b"deflate") {
                Some(Encoding::Deflate)
            } else {
                None
            };
        }
    }

    /// Decodes a kept compressed body in place, up to [`MAX_KEPT_BODY`]. Only kept bodies are
    /// ever decoded: nobody reads the others. A body that does not decode is dropped and marked
    /// truncated, so nothing is captured from it.
    pub fn decode(&mut self) {
        use std::io::Read;
        let Some(encoding) = self.encoding.take() else {
            return;
        };
        let compressed = std::mem::take(&mut self.body);
        let limit = MAX_KEPT_BODY as u64 + 1;
        let read = match encoding {
            Encoding::Gzip => flate2::read::GzDecoder::new(&compressed[..])
                .take(limit)
                .read_to_end(&mut self.body),
            // HTTP's "deflate" is zlib-wrapped (RFC 9110, 8.4.1.2).
            Encoding::Deflate => flate2::read::ZlibDecoder::new(&compressed[..])
                .take(limit)
                .read_to_end(&mut self.body),
        };
        if read.is_err() {
            self.body.clear();
            self.truncated = true;
        } else if self.body.len() > MAX_KEPT_BODY {
            self.body.truncate(MAX_KEPT_BODY);
            self.truncated = true;
        }
    }
}

/// The `timeout=N` of a `Keep-Alive` header value, in seconds.
fn keep_alive_timeout(value: &[u8]) -> Option<Duration> {
    let value = std::str::from_utf8(value).ok()?;
    value.split(',').find_map(|part| {
        let (key, n) = part.split_once('=')?;
        let n: u64 = n.trim().parse().ok()?;
        key.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| Duration::from_secs(n))
    })
}

/// Why an exchange ended without a usable response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Broken {
    /// The failure class.
    pub class: FailureClass,
    /// Bytes of the request written before it broke.
    pub written: u64,
    /// Whether any byte of the request went out.
    pub sent: bool,
    /// Whether any byte of the response arrived.
    pub answered: bool,
    /// The server is known not to have processed the request (HTTP/2: the connection went
    /// away before the stream was opened, or the server refused it with REFUSED_STREAM), so
    /// any request may be sent again.
    pub unprocessed: bool,
    /// Why, where the class alone does not say (an HTTP/2 error code).
    pub reason: Option<&'static str>,
}

impl Broken {
    /// A failure of `class` after `written` bytes of the request went out and none of the
    /// response came back.
    pub fn new(class: FailureClass, written: u64) -> Broken {
        Broken {
            class,
            written,
            sent: written > 0,
            answered: false,
            unprocessed: false,
            reason: None,
        }
    }

    /// Whether the request may be sent again on a fresh connection: the server did not process
    /// it (HTTP/2), or, by Go's `net/http` rule, a reused connection was closed (HTTP/2: went
    /// away with GOAWAY) before answering and the request is idempotent or none of it went out.
    pub fn retryable(&self, request: &[u8], reused: bool) -> bool {
        const IDEMPOTENT: [&[u8]; 6] = [
            b"GET ",
            b"HEAD ",
            b"OPTIONS ",
            b"TRACE ",
            b"PUT ",
            b"DELETE ",
        ];
        if self.unprocessed {
            return true;
        }
        let dropped = match self.class {
            FailureClass::Reset => reused,
            // A GOAWAY's last stream id is not known here: a stream at or below it may have
            // been processed (hypercorn closes right after its GOAWAY), so the same rule.
            FailureClass::GoAway => true,
            _ => false,
        };
        dropped
            && !self.answered
            && (!self.sent || IDEMPOTENT.iter().any(|m| request.starts_with(m)))
    }
}

/// One user's keep-alive connection: its own for HTTP/1.1, a share of one for HTTP/2.
pub(crate) trait Connection: Sized {
    /// Opens a connection through `connector` and prepares it for its protocol; `None` in
    /// place of what opening cost when the user joined a connection already open (HTTP/2).
    async fn open(connector: &Connector) -> Result<(Self, Option<Opened>), ConnectFailure>;

    /// A mark to pass to [`Connection::written_since`] later.
    fn write_mark(&self) -> u64;

    /// Bytes written for this user's request since `mark` (a request cut off by its timeout
    /// counts what went out of it).
    fn written_since(&self, mark: u64) -> u64;

    /// Whether the connection can take another request: blast has not closed it, and the peer
    /// has neither closed it nor sent bytes nobody asked for.
    async fn is_usable(&mut self) -> bool;

    /// Sends one request (complete wire bytes) and reads the whole response into `into`.
    async fn send(&mut self, request: &[u8], into: &mut Received) -> Result<Exchange, Broken>;
}

/// The failure class of an I/O error met while sending or receiving.
fn io_failure(e: &io::Error) -> FailureClass {
    match e.kind() {
        io::ErrorKind::TimedOut => FailureClass::Timeout,
        io::ErrorKind::InvalidData => FailureClass::Protocol,
        _ => FailureClass::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_timeouts_parse_as_servers_write_them() {
        let secs = |v: &str| keep_alive_timeout(v.as_bytes()).map(|d| d.as_secs());
        assert_eq!(secs("timeout=5"), Some(5));
        assert_eq!(secs("timeout=5, max=1000"), Some(5));
        assert_eq!(secs("max=100, Timeout = 2"), Some(2));
        assert_eq!(secs("max=100"), None);
        assert_eq!(secs("timeout=soon"), None);
    }

    #[test]
    fn only_unanswered_resets_of_safe_or_unwritten_requests_are_retried() {
        let reset = |written, answered| Broken {
            answered,
            ..Broken::new(FailureClass::Reset, written)
        };
        let (get, post) = (b"GET / HTTP/1.1\r\n\r\n", b"POST /x HTTP/1.1\r\n\r\n");
        assert!(reset(30, false).retryable(get, true));
        assert!(reset(30, false).retryable(b"DELETE /x HTTP/1.1\r\n\r\n", true));
        assert!(!reset(30, false).retryable(post, true));
        assert!(reset(0, false).retryable(post, true));
        assert!(!reset(30, true).retryable(get, true));
        // A fresh connection that fails is the server's answer, not a stale keep-alive.
        assert!(!reset(0, false).retryable(get, false));
        let timeout = Broken {
            class: FailureClass::Timeout,
            ..reset(0, false)
        };
        assert!(!timeout.retryable(get, true));
        // HTTP/2 streams the server did not process are sent again, whatever the method; a
        // GOAWAY that may have come after the server took the stream, by Go's rule.
        let refused = Broken {
            class: FailureClass::StreamReset,
            unprocessed: true,
            ..reset(30, false)
        };
        assert!(refused.retryable(post, false));
        let goaway = Broken {
            class: FailureClass::GoAway,
            ..reset(30, false)
        };
        assert!(goaway.retryable(get, false));
        assert!(!goaway.retryable(post, false));
    }

    #[test]
    fn kept_bodies_are_decoded_and_bad_ones_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"id": 7}"#).unwrap();
        let mut r = Received {
            keep: true,
            ..Received::default()
        };
        r.header(b"Content-Encoding", b" gzip ");
        r.body_bytes(&gz.finish().unwrap());
        r.decode();
        assert_eq!((&r.body[..], r.truncated), (&br#"{"id": 7}"#[..], false));
        r.clear();
        r.header(b"content-encoding", b"deflate");
        r.body_bytes(b"not deflate");
        r.decode();
        assert!(r.body.is_empty() && r.truncated);
        // Bodies nobody keeps are never looked at.
        let mut drained = Received::default();
        drained.header(b"content-encoding", b"gzip");
        assert_eq!(drained.encoding, None);
    }
}
