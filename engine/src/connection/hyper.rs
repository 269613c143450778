//! The hyper client: `hyper::client::conn::http1` over a byte-counting stream.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{io_failure, Broken, ConnectFailure, Connection, Connector, Exchange, Opened};
use super::{Received, Transport};
use crate::stats::FailureClass;

/// Bytes moved over one connection so far, shared with its driver task on the same thread.
#[derive(Default)]
pub(super) struct Wire {
    pub read: Cell<u64>,
    pub written: Cell<u64>,
}

/// A stream that counts the bytes going through it.
pub(super) struct Counted<S> {
    pub stream: S,
    pub wire: Rc<Wire>,
}

impl<S: Transport> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.wire.read.set(self.wire.read.get() + n);
        poll
    }
}

impl<S: Transport> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = poll {
            self.wire.written.set(self.wire.written.get() + n as u64);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = poll {
            self.wire.written.set(self.wire.written.get() + n as u64);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A keep-alive connection owned by one task; its I/O driver runs on the same thread.
pub(crate) struct HyperConnection<S> {
    sender: SendRequest<Full<Bytes>>,
    wire: Rc<Wire>,
    /// The stream type lives in the driver task; the connection only names it.
    transport: PhantomData<S>,
}

impl<S: Transport> Connection for HyperConnection<S> {
    async fn open(connector: &Connector) -> Result<(Self, Option<Opened>), ConnectFailure> {
        let (stream, opened) = S::open(connector).await?;
        let wire = Rc::new(Wire::default());
        let io = TokioIo::new(Counted {
            stream,
            wire: wire.clone(),
        });
        let (sender, driver) =
            http1::Builder::new()
                .handshake(io)
                .await
                .map_err(|e| ConnectFailure {
                    class: FailureClass::Connect,
                    refused: false,
                    reason: e.to_string(),
                })?;
        // The driver ends by itself when the sender is dropped or the peer closes.
        tokio::task::spawn_local(driver);
        let conn = HyperConnection {
            sender,
            wire,
            transport: PhantomData,
        };
        Ok((conn, Some(opened)))
    }

    fn write_mark(&self) -> u64 {
        self.wire.written.get()
    }

    fn written_since(&self, mark: u64) -> u64 {
        self.wire.written.get() - mark
    }

    async fn is_usable(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    async fn send(&mut self, request: &[u8], into: &mut Received) -> Result<Exchange, Broken> {
        into.clear();
        let (read0, written0) = (self.wire.read.get(), self.wire.written.get());
        let request = from_wire(request).map_err(|class| Broken::new(class, 0))?;
        // A close before any byte of the response is a dropped keep-alive connection; a close
        // inside it is a broken response.
        let fail = |e: hyper::Error| {
            let answered = self.wire.read.get() > read0;
            let class = match classify(&e) {
                FailureClass::Reset if answered => FailureClass::Protocol,
                class => class,
            };
            Broken {
                answered,
                ..Broken::new(class, self.wire.written.get() - written0)
            }
        };
        let response = self.sender.send_request(request).await.map_err(fail)?;
        let status = response.status().as_u16();
        into.status = status;
        for (name, value) in response.headers() {
            into.header(name.as_str().as_bytes(), value.as_bytes());
        }
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.map_err(fail)?.data_ref() {
                into.body_bytes(data);
            }
        }
        Ok(Exchange {
            status,
            sent: self.wire.written.get() - written0,
            received: self.wire.read.get() - read0,
            flow_stall: None,
        })
    }
}

/// Rebuilds a hyper request from wire bytes (scripts write requests as bytes, for the raw
/// client's sake); a request that does not parse is the script's fault, counted as protocol.
fn from_wire(wire: &[u8]) -> Result<Request<Full<Bytes>>, FailureClass> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = parsed.parse(wire) else {
        return Err(FailureClass::Protocol);
    };
    let mut builder = Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"));
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let body = Full::new(Bytes::copy_from_slice(&wire[len..]));
    builder.body(body).map_err(|_| FailureClass::Protocol)
}

/// Maps a hyper error to the failure class a user would look for.
fn classify(e: &hyper::Error) -> FailureClass {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() || e.is_user() {
        return FailureClass::Protocol;
    }
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() || e.is_body_write_aborted() {
        return FailureClass::Reset;
    }
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return io_failure(io);
        }
        source = err.source();
    }
    FailureClass::Protocol
}
