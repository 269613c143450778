//! The raw client: pre-encoded requests written straight to the socket, responses parsed with
//! `httparse` and drained in place. One buffer per connection, no second task, no allocation
//! per request.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::{io_failure, Broken, ConnectFailure, Connection, Connector, Exchange, Opened};
use super::{Received, Transport};
use crate::stats::FailureClass;

/// Read buffer size per connection: a typical API response's head (nginx's is ~150 bytes)
/// and a small body fit. It doubles
/// when a read fills it (a large response, up to [`MAX_READ_BUFFER`], or a large head) and
/// goes back to this after a response that fit in it.
const INITIAL_BUFFER: usize = 512;
/// The most a read buffer grows to for bodies: larger reads save no system call worth the
/// memory at thousands of connections.
const MAX_READ_BUFFER: usize = 64 * 1024;
/// Largest response head accepted (status line and headers); more is a protocol failure.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers accepted in one response.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size or trailer line accepted in a chunked body.
const MAX_LINE: usize = 4 * 1024;

/// How the response body ends.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the response head says.
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    close: bool,
}

pub(crate) struct RawConnection<S> {
    stream: S,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes read for the current response.
    received: u64,
    /// Bytes written on this connection so far.
    written: u64,
    open: bool,
}

impl<S: Transport> Connection for RawConnection<S> {
    async fn open(connector: &Connector) -> Result<(Self, Option<Opened>), ConnectFailure> {
        let (stream, opened) = S::open(connector).await?;
        let conn = RawConnection {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            received: 0,
            written: 0,
            open: true,
        };
        Ok((conn, Some(opened)))
    }

    fn write_mark(&self) -> u64 {
        self.written
    }

    fn written_since(&self, mark: u64) -> u64 {
        self.written - mark
    }

    async fn is_usable(&mut self) -> bool {
        // Bytes left over after the last response were never asked for (a server's 408 before
        // it closes, say): the connection is out of step.
        if !self.open || self.start != self.end {
            return false;
        }
        // One non-blocking read, as urllib3 and Go do before reusing an idle connection: only
        // "nothing to read yet" means the peer still holds the connection open. TLS records
        // that carry no data (session tickets) are consumed by rustls and read as nothing.
        (self.start, self.end) = (0, 0);
        let mut probe = ReadBuf::new(&mut self.buf);
        let stream = &mut self.stream;
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut *stream).poll_read(cx, &mut probe)));
        self.open = ready.await.is_pending();
        self.open
    }

    async fn send(&mut self, request: &[u8], into: &mut Received) -> Result<Exchange, Broken> {
        // The last response fit in the initial buffer: give back what a larger one grew.
        if self.buf.len() > INITIAL_BUFFER
            && self.received <= INITIAL_BUFFER as u64
            && self.start == self.end
        {
            self.buf.truncate(INITIAL_BUFFER);
            self.buf.shrink_to_fit();
            (self.start, self.end) = (0, 0);
        }
        self.received = 0;
        into.clear();
        let mut written = 0;
        let result = match self.write(request, &mut written).await {
            Ok(()) => {
                self.read_response(request.starts_with(b"HEAD "), into)
                    .await
            }
            Err(class) => Err(class),
        };
        match result {
            Ok(status) => Ok(Exchange {
                status,
                sent: written,
                received: self.received,
                flow_stall: None,
            }),
            Err(class) => {
                self.open = false;
                Err(Broken {
                    answered: self.received > 0,
                    ..Broken::new(class, written)
                })
            }
        }
    }
}

impl<S: Transport> RawConnection<S> {
    /// Writes the whole request, counting what the stream took.
    async fn write(&mut self, request: &[u8], written: &mut u64) -> Result<(), FailureClass> {
        while (*written as usize) < request.len() {
            match self.stream.write(&request[*written as usize..]).await {
                Ok(0) => return Err(FailureClass::Reset),
                Ok(n) => {
                    *written += n as u64;
                    self.written += n as u64;
                }
                Err(e) => return Err(io_failure(&e)),
            }
        }
        // TLS holds records until flushed; for TCP this is free.
        self.stream.flush().await.map_err(|e| io_failure(&e))
    }

    async fn read_response(
        &mut self,
        head_only: bool,
        into: &mut Received,
    ) -> Result<u16, FailureClass> {
        loop {
            let head = loop {
                match self.parse_head(into)? {
                    Some(head) => break head,
                    None if self.end - self.start >= MAX_HEAD => {
                        return Err(FailureClass::Protocol)
                    }
                    None => self.fill().await?,
                }
            };
            self.start += head.len;
            // Interim responses (100 Continue) precede the real one.
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            let bodiless = head_only || matches!(head.status, 101 | 204 | 304);
            match head.framing {
                _ if bodiless => {}
                Framing::None => {}
                Framing::Length(n) => self.skip(n, into).await?,
                Framing::Chunked => self.skip_chunked(into).await?,
                Framing::UntilClose => {
                    self.skip_to_close(into).await?;
                    self.open = false;
                }
            }
            if head.close {
                self.open = false;
            } else {
                self.stream.resting();
            }
            return Ok(head.status);
        }
    }

    /// Parses a complete response head from the buffer, `None` if more bytes are needed.
    fn parse_head(&self, into: &mut Received) -> Result<Option<Head>, FailureClass> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(&self.buf[self.start..self.end]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(FailureClass::Protocol),
        };
        let status = response.code.ok_or(FailureClass::Protocol)?;
        let mut close = response.version == Some(0);
        let mut framing = Framing::UntilClose;
        into.status = status;
        for h in response.headers.iter() {
            into.header(h.name.as_bytes(), h.value);
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or(FailureClass::Protocol)?;
                match framing {
                    Framing::Length(m) if m != n => return Err(FailureClass::Protocol),
                    Framing::Chunked => {}
                    _ => framing = Framing::Length(n),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if has_token(h.value, b"chunked") {
                    // Chunked wins over any Content-Length (RFC 9112, 6.3).
                    framing = Framing::Chunked;
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                if has_token(h.value, b"close") {
                    close = true;
                } else if has_token(h.value, b"keep-alive") {
                    close = false;
                }
            }
        }
        if matches!(framing, Framing::UntilClose) && status < 200 {
            framing = Framing::None;
        }
        Ok(Some(Head {
            status,
            len,
            framing,
            close,
        }))
    }

    /// Reads more bytes into the buffer, making room first.
    async fn fill(&mut self) -> Result<(), FailureClass> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else {
                let grown = (self.buf.len() * 2).min(MAX_HEAD + INITIAL_BUFFER);
                self.buf.resize(grown, 0);
            }
        }
        match self.stream.read(&mut self.buf[self.end..]).await {
            // A close before any byte of the response is a dropped keep-alive connection;
            // a close inside it is a broken response.
            Ok(0) if self.received == 0 => Err(FailureClass::Reset),
            Ok(0) => Err(FailureClass::Protocol),
            Ok(n) => {
                self.end += n;
                self.received += n as u64;
                // The read filled the buffer: more is likely waiting, so read more at a time.
                if self.end == self.buf.len() && self.buf.len() < MAX_READ_BUFFER {
                    self.buf.resize(self.buf.len() * 2, 0);
                }
                Ok(())
            }
            Err(e) => Err(io_failure(&e)),
        }
    }

    /// Consumes `n` body bytes.
    async fn skip(&mut self, mut n: u64, into: &mut Received) -> Result<(), FailureClass> {
        loop {
            let take = ((self.end - self.start) as u64).min(n);
            into.body_bytes(&self.buf[self.start..self.start + take as usize]);
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Consumes one line ending in CRLF and returns its length without the CRLF.
    async fn line(&mut self) -> Result<usize, FailureClass> {
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(at) = unread.windows(2).position(|w| w == b"\r\n") {
                self.start += at + 2;
                return Ok(at);
            }
            if unread.len() > MAX_LINE {
                return Err(FailureClass::Protocol);
            }
            self.fill().await?;
        }
    }

    /// Consumes a chunked body, trailers included.
    async fn skip_chunked(&mut self, into: &mut Received) -> Result<(), FailureClass> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        self.start += len;
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.end - self.start <= MAX_LINE => {
                        self.fill().await?
                    }
                    _ => return Err(FailureClass::Protocol),
                }
            };
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while self.line().await? > 0 {}
                return Ok(());
            }
            self.skip(size, into).await?;
            if self.line().await? != 0 {
                return Err(FailureClass::Protocol);
            }
        }
    }

    /// Consumes a body that ends when the server closes the connection.
    async fn skip_to_close(&mut self, into: &mut Received) -> Result<(), FailureClass> {
        into.body_bytes(&self.buf[self.start..self.end]);
        loop {
            (self.start, self.end) = (0, 0);
            match self.stream.read(&mut self.buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.received += n as u64;
                    into.body_bytes(&self.buf[..n]);
                }
                Err(e) => return Err(io_failure(&e)),
            }
        }
    }
}

/// Whether a comma-separated header value holds `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// In-memory connections for tests and the response parser's fuzz target.
#[cfg(any(test, fuzzing))]
mod duplex {
    use super::*;
    use tokio::io::DuplexStream;

    impl Transport for DuplexStream {
        const TLS: bool = false;

        async fn open(_connector: &Connector) -> Result<(Self, Opened), ConnectFailure> {
            unreachable!("tests build their connections from a duplex pair")
        }
    }

    /// A raw connection over one end of a duplex pair.
    pub(crate) fn connection(stream: DuplexStream) -> RawConnection<DuplexStream> {
        RawConnection {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            received: 0,
            written: 0,
            open: true,
        }
    }

    /// Sends a GET whose peer answers `response` in two writes split at `split`, then closes.
    /// Whatever the bytes, the exchange ends with a status or a failure class.
    #[cfg(fuzzing)]
    pub fn exchange(response: &[u8], split: usize) {
        use tokio::io::AsyncWriteExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        runtime.block_on(async {
            let (client, mut server) = tokio::io::duplex(1 << 16);
            let mut conn = connection(client);
            let (first, second) = response.split_at(split.min(response.len()));
            let peer = async move {
                let _ = server.write_all(first).await;
                let _ = server.write_all(second).await;
            };
            let mut into = Received {
                keep: true,
                ..Received::default()
            };
            let request = b"GET / HTTP/1.1\r\nhost: fuzz\r\n\r\n";
            let (sent, ()) = tokio::join!(conn.send(request, &mut into), peer);
            if sent.is_ok() {
                let _ = conn.is_usable().await;
            }
        });
    }
}

#[cfg(test)]
use duplex::connection;
#[cfg(fuzzing)]
pub use duplex::exchange;

#[cfg(test)]
mod tests {
    use super::*;

    /// What the connection made of one exchange.
    #[derive(Debug, PartialEq)]
    struct Seen {
        status: Result<u16, FailureClass>,
        body: Vec<u8>,
        usable: bool,
    }

    /// Sends `request` and answers it with `response`, written in two parts split at `split`;
    /// the server side then closes when `close` says so.
    async fn exchange(request: &[u8], response: &[u8], split: usize, close: bool) -> Seen {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut conn = connection(client);
        let (first, second) = response.split_at(split);
        let (first, second) = (first.to_vec(), second.to_vec());
        let request_len = request.len();
        let peer = tokio::task::spawn_local(async move {
            let mut got = vec![0; request_len];
            server.read_exact(&mut got).await.unwrap();
            server.write_all(&first).await.unwrap();
            // Let the client read the first part on its own before the rest arrives.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            server.write_all(&second).await.unwrap();
            if !close {
                // Hold the connection open until the client is done with it.
                std::future::pending::<()>().await;
            }
        });
        let mut into = Received {
            keep: true,
            ..Received::default()
        };
        let status = conn
            .send(request, &mut into)
            .await
            .map(|e| e.status)
            .map_err(|b| b.class);
        // Whatever the peer still sends arrives before the check, as it would during a rest.
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        let usable = conn.is_usable().await;
        peer.abort();
        Seen {
            status,
            body: into.body,
            usable,
        }
    }

    /// Runs `response` split at every byte boundary and checks each outcome is `expected`.
    fn at_every_split(request: &[u8], response: &[u8], close: bool, expected: Seen) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        for split in 0..=response.len() {
            let seen = local.block_on(&runtime, exchange(request, response, split, close));
            assert_eq!(
                seen,
                expected,
                "split at {split} of {:?}",
                String::from_utf8_lossy(response)
            );
        }
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

    fn ok(status: u16, body: &[u8], usable: bool) -> Seen {
        Seen {
            status: Ok(status),
            body: body.to_vec(),
            usable,
        }
    }

    #[test]
    fn a_content_length_body_is_read_whole() {
        let response = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        at_every_split(GET, response, false, ok(200, b"hello", true));
    }

    #[test]
    fn a_chunked_body_with_trailers_is_read_whole() {
        let response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nx-trailer: yes\r\nx-other: 2\r\n\r\n";
        at_every_split(GET, response, false, ok(200, b"hello!", true));
    }

    #[test]
    fn head_and_bodiless_statuses_ignore_content_length() {
        let head = b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n";
        let response = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
        at_every_split(head, response, false, ok(200, b"", true));
        for status in ["204 No Content", "304 Not Modified"] {
            let response = format!("HTTP/1.1 {status}\r\ncontent-length: 1000\r\n\r\n");
            let code = status[..3].parse().unwrap();
            at_every_split(GET, response.as_bytes(), false, ok(code, b"", true));
        }
    }

    #[test]
    fn interim_responses_come_before_the_real_one() {
        let response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok";
        at_every_split(GET, response, false, ok(201, b"ok", true));
    }

    #[test]
    fn leftover_bytes_make_the_connection_unusable() {
        // A response followed by bytes nobody asked for, such as a 408 before a close.
        let response =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 408 Request Timeout\r\n\r\n";
        at_every_split(GET, response, false, ok(200, b"ok", false));
    }

    #[test]
    fn a_body_until_close_and_connection_close_end_the_connection() {
        let response = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        at_every_split(GET, response, true, ok(200, b"all of it", false));
        let response = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok";
        at_every_split(GET, response, false, ok(200, b"ok", false));
        let response = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok";
        at_every_split(GET, response, false, ok(200, b"ok", false));
    }

    #[test]
    fn broken_responses_are_classified() {
        let failed = |class| Seen {
            status: Err(class),
            body: Vec::new(),
            usable: false,
        };
        // Closed before any byte: a dropped keep-alive connection.
        at_every_split(GET, b"", true, failed(FailureClass::Reset));
        // Cut off inside the body, or not HTTP at all.
        let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n";
        at_every_split(GET, cut, true, failed(FailureClass::Protocol));
        at_every_split(
            GET,
            b"garbage\r\n\r\n",
            false,
            failed(FailureClass::Protocol),
        );
        let conflicting = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok";
        at_every_split(GET, conflicting, false, failed(FailureClass::Protocol));
    }

    #[test]
    fn the_buffer_grows_for_a_large_response_and_shrinks_after_one_that_fits() {
        use tokio::io::AsyncWriteExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, mut server) = tokio::io::duplex(256 * 1024);
            let mut conn = duplex::connection(client);
            let mut into = Received::default();
            let big = vec![b'x'; 100_000];
            let mut sizes = Vec::new();
            for body in [&big[..], b"ok", b"ok"] {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                server
                    .write_all(&[head.as_bytes(), body].concat())
                    .await
                    .unwrap();
                let exchange = conn.send(GET, &mut into).await.unwrap();
                assert_eq!((exchange.status, into.body_len), (200, body.len() as u64));
                sizes.push(conn.buf.len());
            }
            // Grown by the large body; kept for the next response (which might be as large);
            // back to the initial size once a response fit in it.
            assert!(
                sizes[0] > INITIAL_BUFFER && sizes[0] <= MAX_READ_BUFFER,
                "{sizes:?}"
            );
            assert_eq!(sizes[1], sizes[0]);
            assert_eq!(sizes[2], INITIAL_BUFFER);
        });
    }
}
