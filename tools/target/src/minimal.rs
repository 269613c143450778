//! The minimal target of `blast selftest`: answers every request with the same tiny response
//! and does nothing else, so that a run against it measures the generator, not the server.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// A running minimal target; it stops when the process ends.
pub struct MinimalServer {
    addr: SocketAddr,
}

impl MinimalServer {
    /// Binds `addr` (port 0 picks one) and serves on one background thread.
    pub fn start(addr: SocketAddr) -> io::Result<MinimalServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        std::thread::Builder::new()
            .name("blast-minimal-target".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    while let Ok((stream, _)) = listener.accept().await {
                        tokio::task::spawn_local(serve(stream));
                    }
                });
            })?;
        Ok(MinimalServer { addr })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Answers each request head (up to its blank line) with [`RESPONSE`]; bodies are not expected.
async fn serve(mut stream: tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 8192];
    let mut pending = 0;
    loop {
        let n = match stream.read(&mut buf[pending..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let end = pending + n;
        let mut start = 0;
        let mut answers = 0;
        while let Some(at) = buf[start..end].windows(4).position(|w| w == b"\r\n\r\n") {
            start += at + 4;
            answers += 1;
        }
        buf.copy_within(start..end, 0);
        pending = end - start;
        if pending == buf.len() {
            return;
        }
        for _ in 0..answers {
            if stream.write_all(RESPONSE).await.is_err() {
                return;
            }
        }
    }
}
