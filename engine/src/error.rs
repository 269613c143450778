//! Setup errors of the engine. Per-request failures are never errors: they are counted.

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The URL cannot be used as a target.
    #[error("invalid URL {url:?}: {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A method, path, header or body cannot be sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The plan asks for something impossible (no users, a zero rate, no requests).
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// The target did not accept a connection (or a TLS handshake) before the run started.
    #[error("cannot connect to {origin}: {why}")]
    Unreachable {
        /// `scheme://host[:port]` of the target.
        origin: String,
        /// What went wrong, e.g. what the OS said.
        why: String,
    },
    /// The target's host name did not resolve before the run started (a well-formed name
    /// that DNS does not know, or no DNS): the run cannot happen, the flags are not wrong.
    #[error("cannot resolve {host}: {why}")]
    Unresolvable {
        /// The host name as given.
        host: String,
        /// What the resolver said.
        why: String,
    },
    /// The TLS settings cannot be used (an unreadable CA file, no trusted roots).
    #[error("TLS: {0}")]
    Tls(String),
    /// `--io uring` was asked for where the kernel refuses io_uring.
    #[error("io_uring is not available here ({0}): use --io epoll, or auto to fall back")]
    Uring(String),
    /// A worker thread could not be started.
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
}
