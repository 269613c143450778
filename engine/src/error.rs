//! Setup errors of the engine. Per-request failures are never errors: they are counted.

use std::net::SocketAddr;

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
    /// The target did not accept a connection before the run started.
    #[error("cannot connect to {addr}: {source}")]
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A worker thread could not be started.
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
}
