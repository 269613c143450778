//! What a run is asked to do: the [`Plan`], settled before anything starts.

use std::sync::Arc;
use std::time::Duration;

use crate::connection::{Client, Connector, Io, Protocol, TlsOptions};
use crate::request::Target;
use crate::schedule::Schedule;
use crate::script::Script;
use crate::EngineError;

/// Everything a run needs, decided before it starts.
#[derive(Clone)]
pub struct Plan {
    /// Where requests go.
    pub target: Target,
    /// What each user sends.
    pub script: Arc<dyn Script>,
    /// Closed users or open arrival rate, each over time.
    pub schedule: Schedule,
    /// HTTP/1.1 client implementation. Default: [`Client::Raw`].
    pub client: Client,
    /// The HTTP version to speak; `None` lets TLS's ALPN choose (HTTP/2 where the server offers
    /// it), and means HTTP/1.1 on `http://` (HTTP/2 there is h2c with prior knowledge).
    /// Default: `None`.
    pub http: Option<Protocol>,
    /// HTTP/2: users (concurrent streams) per connection at most; the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` may lower it. Default: 1, a connection per user as
    /// with HTTP/1.1.
    pub streams: usize,
    /// How sockets send and receive. Default: [`Io::Auto`], io_uring where it is allowed.
    pub io: Io,
    /// How `https://` targets are trusted. Default: the platform's root certificates.
    pub tls: TlsOptions,
    /// Send a request again, once, on a fresh connection when a reused connection closed
    /// before answering it and the request is idempotent or was not written (Go's rule).
    /// Default: true.
    pub retry: bool,
    /// How long to send for, counted from the start (ramps included). Default: 10 s.
    pub run_time: Duration,
    /// Worker threads. Default: one per core available to the process.
    pub workers: usize,
    /// Pin each worker to its own core. Default: true.
    pub pin: bool,
    /// Time allowed for one request, connect excluded. Default: 60 s, as Locust.
    pub timeout: Duration,
    /// Time allowed to open one TCP connection. Default: 5 s.
    pub connect_timeout: Duration,
    /// After the run time (or a stop), how long in-flight requests may finish. Default: 5 s.
    pub stop_timeout: Duration,
    /// How often workers ship stats and the observer sees a snapshot. Default: 1 s.
    pub interval: Duration,
    /// Forget the ramp-up: the cumulative stats (and every output made from them) start again
    /// when the shape first reaches its peak, as Locust's `--reset-stats`. Default: false.
    pub reset_stats: bool,
    /// Which part of a run split over several processes this one is. Default: the whole run.
    pub shard: Shard,
    /// The time every process of the run was told to start at: the run's intervals then
    /// fall on this time's grid (see [`crate::Report::started_at`]). Default: none.
    pub start_at: Option<std::time::SystemTime>,
}

/// One of several processes that run one plan together (`--shard 2/8`): each takes an even
/// integer share of the users (or of the rate, with interleaved timetables), so the shards
/// together make the load one process would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Shard {
    /// From 0.
    pub index: usize,
    /// Shards in all, at least 1.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { index: 0, count: 1 }
    }
}

impl Plan {
    /// A plan with default settings for everything but what and how to send.
    pub fn new(target: Target, script: impl Script, schedule: Schedule) -> Plan {
        Plan {
            target,
            script: Arc::new(script),
            schedule,
            client: Client::default(),
            http: None,
            streams: 1,
            io: Io::Auto,
            tls: TlsOptions::default(),
            retry: true,
            run_time: Duration::from_secs(10),
            workers: available_cores().len().max(1),
            pin: true,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            reset_stats: false,
            shard: Shard::default(),
            start_at: None,
        }
    }

    /// A connector to the plan's target, for one thread.
    pub(crate) fn connector(&self, tls: Option<&Arc<rustls::ClientConfig>>) -> Connector {
        let tls = tls.map(|config| {
            let name = rustls::pki_types::ServerName::try_from(self.target.host.clone())
                .expect("Target::parse refuses a TLS host that is not a server name");
            (tokio_rustls::TlsConnector::from(config.clone()), name)
        });
        Connector::new(
            self.target.addrs.clone(),
            self.connect_timeout,
            tls,
            self.streams,
        )
    }

    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        let bad = |why: &str| Err(EngineError::InvalidPlan(why.to_string()));
        match &self.schedule {
            Schedule::Closed { users } if !users.is_valid() || users.peak() < 1.0 => {
                return bad("users must be at least 1")
            }
            Schedule::Open { rate, .. } if !rate.is_valid() || rate.peak() <= 0.0 => {
                return bad("rate must be a positive number")
            }
            Schedule::Open {
                max_connections: 0, ..
            } => return bad("max connections must be at least 1"),
            _ => {}
        }
        if self.script.names().is_empty() {
            return bad("no requests to send");
        }
        if self.streams == 0 {
            return bad("streams must be at least 1");
        }
        if self.streams > 1 && self.http == Some(Protocol::Http1) {
            return bad(
                "--streams needs HTTP/2: HTTP/1.1 sends one request at a time per connection",
            );
        }
        if self.streams > 1 && !self.target.tls && self.http.is_none() {
            return bad("--streams needs HTTP/2: add --http2 to speak it on http:// (h2c)");
        }
        if self.workers == 0 {
            return bad("threads must be at least 1");
        }
        if self.shard.count == 0 || self.shard.index >= self.shard.count {
            return bad("the shard must be one of the shards (--shard I/N with 1 <= I <= N)");
        }
        if self.interval.is_zero() || self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("interval and timeouts must be above zero");
        }
        Ok(())
    }
}

/// Cores this process may run on (respects `taskset` and cgroup masks).
pub fn available_cores() -> Vec<core_affinity::CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}
