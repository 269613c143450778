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

/// Read buffer size per connection; it grows only for response heads larger than this.
const INITIAL_BUFFER: usize = 4 * 1024;
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
    open: bool,
}

impl<S: Transport> Connection for RawConnection<S> {
    async fn open(connector: &Connector) -> Result<(Self, Opened), ConnectFailure> {
        let (stream, opened) = S::open(connector).await?;
        let conn = RawConnection {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            received: 0,
            open: true,
        };
        Ok((conn, opened))
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
            }),
            Err(class) => {
                self.open = false;
                Err(Broken {
                    class,
                    written,
                    answered: self.received > 0,
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
                Ok(n) => *written += n as u64,
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
