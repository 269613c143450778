//! blast's reference target: a small, fast HTTP/1.1 server with knobs for misbehaving.
//!
//! [`Server::start`] binds (use port 0 in tests), serves on its own threads and counts every
//! request it handled, so tests can reconcile blast's counts with the server's.
//!
//! ```
//! use blast_target::{Config, Server};
//!
//! let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
//! println!("listening on {}", server.url());
//! assert_eq!(server.served(), 0);
//! ```
//!
//! Routes: `GET /` (a 2-byte body), `POST /echo` (the request body back), `GET /status/{code}`
//! (that status), httpbin's `/redirect/N`, `/redirect-to?url=U&status_code=S`, `/gzip` and
//! `/cookies`, `/only-get` (405 for other methods), anything else 404; and the [`App`]s of
//! [`Config::apps`] under their prefixes (the P4.3 pack's EUCORA API under `/api/v1/`).
#![deny(missing_docs)]

mod minimal;
mod server;

pub use minimal::MinimalServer;
pub use server::{App, Config, Latency, Server, Stall, TlsIdentity};
