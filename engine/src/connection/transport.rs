//! Transports: how a connection's byte stream is opened. Plain TCP tries every address the host
//! resolved to; TLS runs a rustls handshake over that TCP stream. The transport is chosen once
//! per run (the worker loop is generic over it), never per request.

use socket2::{Domain, Protocol, Socket, Type};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::tls::{tls_reason, ServerName};
use super::uring::{Ring, UringStream};
use super::H2Pool;
use crate::stats::FailureClass;

/// What opening a connection cost.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Opened {
    /// TCP connect time (every address tried included).
    pub connect: Duration,
    /// TLS handshake time and whether the session was resumed; `None` for plain TCP.
    pub handshake: Option<(Duration, bool)>,
}

/// Why a connection could not be opened.
#[derive(Clone, Debug)]
pub(crate) struct ConnectFailure {
    /// [`FailureClass::Connect`], [`FailureClass::Tls`], or [`FailureClass::Protocol`] when
    /// the server does not speak HTTP/2 where asked to.
    pub class: FailureClass,
    /// Nothing was listening (every address refused).
    pub refused: bool,
    /// Why, in a few words: what the OS said, or why the TLS handshake failed.
    pub reason: String,
}

impl ConnectFailure {
    fn tcp(e: &io::Error) -> ConnectFailure {
        ConnectFailure {
            class: FailureClass::Connect,
            refused: e.kind() == io::ErrorKind::ConnectionRefused,
            reason: e.to_string(),
        }
    }

    fn tls(reason: String) -> ConnectFailure {
        ConnectFailure {
            class: FailureClass::Tls,
            refused: false,
            reason,
        }
    }
}

/// Opens connections to one target for one worker thread.
pub(crate) struct Connector {
    addrs: Arc<[SocketAddr]>,
    /// The address that connected last; tried first, so a dead address costs one attempt.
    preferred: Cell<usize>,
    pub timeout: Duration,
    tls: Option<(TlsConnector, ServerName)>,
    /// HTTP/2: this thread's shared connections.
    pub h2: H2Pool,
    /// `--io uring`: this thread's ring, which its [`UringStream`]s go through.
    pub ring: Option<Rc<Ring>>,
}

impl Connector {
    /// A connector for `addrs` (in resolver order), with TLS when `tls` is given; HTTP/2
    /// connections take up to `streams` users each.
    pub fn new(
        addrs: Arc<[SocketAddr]>,
        timeout: Duration,
        tls: Option<(TlsConnector, ServerName)>,
        streams: usize,
    ) -> Connector {
        Connector {
            addrs,
            preferred: Cell::new(0),
            timeout,
            tls,
            h2: H2Pool::new(streams),
            ring: None,
        }
    }

    /// Opens a TCP connection, trying each address in turn from the one that worked last.
    async fn tcp(&self) -> Result<(TcpStream, Duration), ConnectFailure> {
        let started = Instant::now();
        let n = self.addrs.len();
        let first = self.preferred.get();
        let mut failure = None;
        for i in (0..n).map(|k| (first + k) % n) {
            match tcp_connect(self.addrs[i], self.timeout).await {
                Ok(stream) => {
                    self.preferred.set(i);
                    return Ok((stream, started.elapsed()));
                }
                Err(e) => {
                    // Refused everywhere reads as refused; any other error wins over it.
                    let f = ConnectFailure::tcp(&e);
                    if failure
                        .as_ref()
                        .is_none_or(|old: &ConnectFailure| old.refused)
                    {
                        failure = Some(f);
                    }
                }
            }
        }
        Err(failure.expect("a target has at least one address"))
    }
}

/// Opens a TCP connection with NODELAY within `connect_timeout`.
async fn tcp_connect(addr: SocketAddr, connect_timeout: Duration) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Requests are small and latency-sensitive: never wait for Nagle to coalesce them.
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    // Buffer sizes are left to the kernel's autotuning: fixing SO_RCVBUF would switch it off
    // and pin memory per connection, which matters at thousands of connections.
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    tokio::time::timeout(connect_timeout, socket.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// A byte stream a connection runs over.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Sized + 'static {
    /// Whether the stream is TLS (`https://`).
    const TLS: bool;

    /// Opens one stream to the connector's target.
    async fn open(connector: &Connector) -> Result<(Self, Opened), ConnectFailure>;

    /// The connection rests until its next request (see [`Tcp::resting`]).
    fn resting(&mut self) {}
}

/// A TCP stream, through which I/O goes: tokio's (epoll) or a worker's io_uring ring.
pub(crate) trait Tcp: AsyncRead + AsyncWrite + Unpin + Sized + 'static {
    /// The stream for a socket tokio connected.
    fn from_tokio(stream: TcpStream, connector: &Connector) -> io::Result<Self>;

    /// The connection rests until its next request: a stream that learns of the peer's close
    /// only from an operation in flight starts one now.
    fn resting(&mut self) {}
}

impl Tcp for TcpStream {
    fn from_tokio(stream: TcpStream, _: &Connector) -> io::Result<TcpStream> {
        Ok(stream)
    }
}

impl Tcp for UringStream {
    fn from_tokio(stream: TcpStream, connector: &Connector) -> io::Result<UringStream> {
        let ring = connector
            .ring
            .as_ref()
            .expect("io_uring streams run on a ring");
        UringStream::new(stream, ring)
    }

    fn resting(&mut self) {
        self.watch();
    }
}

impl<S: Tcp> Transport for S {
    const TLS: bool = false;

    async fn open(connector: &Connector) -> Result<(S, Opened), ConnectFailure> {
        let (stream, connect) = connector.tcp().await?;
        let stream = S::from_tokio(stream, connector).map_err(|e| ConnectFailure::tcp(&e))?;
        Ok((
            stream,
            Opened {
                connect,
                handshake: None,
            },
        ))
    }

    fn resting(&mut self) {
        Tcp::resting(self);
    }
}

impl<S: Tcp> Transport for TlsStream<S> {
    const TLS: bool = true;

    async fn open(connector: &Connector) -> Result<(Self, Opened), ConnectFailure> {
        let (tls, name) = connector
            .tls
            .as_ref()
            .expect("a TLS transport runs only with a TLS connector");
        let (tcp, connect) = connector.tcp().await?;
        let tcp = S::from_tokio(tcp, connector).map_err(|e| ConnectFailure::tcp(&e))?;
        let started = Instant::now();
        let handshake = tokio::time::timeout(connector.timeout, tls.connect(name.clone(), tcp));
        let stream = match handshake.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(ConnectFailure::tls(tls_reason(&e))),
            Err(_) => return Err(ConnectFailure::tls("the TLS handshake timed out".into())),
        };
        let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        Ok((
            stream,
            Opened {
                connect,
                handshake: Some((started.elapsed(), resumed)),
            },
        ))
    }

    fn resting(&mut self) {
        self.get_mut().0.resting();
    }
}
