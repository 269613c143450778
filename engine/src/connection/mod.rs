//! Connections: TCP set-up with socket2, and the two HTTP/1.1 clients a worker can use.
//!
//! The client is chosen once per run ([`Client`]); the worker loop is generic over
//! [`Connection`], so nothing branches on it per request.

mod hyper;
mod raw;

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

use crate::script::MAX_KEPT_BODY;
use crate::stats::FailureClass;

pub(crate) use self::hyper::HyperConnection;
pub(crate) use self::raw::RawConnection;

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

/// What one exchange produced when the server answered.
pub(crate) struct Exchange {
    /// Response status code.
    pub status: u16,
    /// Bytes written for this request.
    pub sent: u64,
    /// Bytes read for this response.
    pub received: u64,
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
}

impl Received {
    /// Forgets the previous response.
    fn clear(&mut self) {
        self.body.clear();
        self.truncated = false;
        self.set_cookies.clear();
        self.body_len = 0;
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

    /// Keeps a `Set-Cookie` value.
    fn header(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"set-cookie") {
            self.set_cookies
                .push(String::from_utf8_lossy(value).into_owned());
        }
    }
}

/// One keep-alive HTTP/1.1 connection, owned by one task.
pub(crate) trait Connection: Sized {
    /// Opens a TCP connection and prepares it for HTTP/1.1.
    async fn open(addr: SocketAddr, connect_timeout: Duration) -> io::Result<Self>;

    /// Whether the connection can take another request (the server may have closed it).
    async fn is_usable(&mut self) -> bool;

    /// Sends one request (complete wire bytes) and reads the whole response into `into`.
    async fn send(&mut self, request: &[u8], into: &mut Received)
        -> Result<Exchange, FailureClass>;
}

/// Opens a TCP connection with NODELAY within `connect_timeout`.
async fn tcp_connect(addr: SocketAddr, connect_timeout: Duration) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Requests are small and latency-sensitive: never wait for Nagle to coalesce them.
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    // Buffer sizes are left to the kernel's autotuning: fixing SO_RCVBUF would switch it off
    // and pin memory per connection, which matters at thousands of connections.
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    tokio::time::timeout(connect_timeout, socket.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// The failure class of an I/O error met while sending or receiving.
fn io_failure(e: &io::Error) -> FailureClass {
    match e.kind() {
        io::ErrorKind::TimedOut => FailureClass::Timeout,
        io::ErrorKind::InvalidData => FailureClass::Protocol,
        _ => FailureClass::Reset,
    }
}
