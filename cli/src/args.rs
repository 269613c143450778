//! Command-line flags, parsed by clap and resolved at once into the engine's plain types.

use anyhow::{bail, Context};
use blast_engine::{available_cores, Client, Plan, RequestTemplate, Requests, Schedule, Target};
use bytes::Bytes;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

use crate::timespan;

/// HTTP load generator: Locust's concepts at wrk's efficiency, with numbers you can trust.
#[derive(Parser, Debug)]
#[command(name = "blast", version, about, max_term_width = 100)]
#[command(after_help = "Examples:\n  \
    blast http://127.0.0.1:8080/ -u 64 -t 10s       64 users looping GET (the wrk model)\n  \
    blast http://127.0.0.1:8080/ --rate 2000 -t 1m  2000 requests/s, latency from schedule\n  \
    blast -u 64 -t 10s                              against the built-in reference target")]
pub struct Args {
    /// URL to load, `http://host[:port]/path`. Without it, blast starts its reference target.
    pub url: Option<String>,

    /// Concurrent users, each looping on its own keep-alive connection.
    #[arg(short = 'u', long, default_value_t = 10)]
    pub users: u64,

    /// Run time: 30s, 5m, 1h30m or bare seconds.
    #[arg(short = 't', long = "run-time", default_value = "10s", value_parser = timespan::parse)]
    pub run_time: Duration,

    /// Open model: send this many requests/s in total on a fixed schedule (users are ignored).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Open model: at most this many connections in total.
    #[arg(long, default_value_t = 1000)]
    pub max_connections: u64,

    /// Worker threads, one per core. Default: the cores available to blast.
    #[arg(long)]
    pub threads: Option<usize>,

    /// HTTP/1.1 client: raw (pre-encoded requests, httparse) or hyper.
    #[arg(long, value_enum, default_value_t = ClientArg::Raw)]
    pub client: ClientArg,

    /// Do not pin worker threads to cores.
    #[arg(long)]
    pub no_pin: bool,

    /// HTTP method. Default: GET, or POST when a body is given.
    #[arg(short = 'X', long)]
    pub method: Option<String>,

    /// Extra header, "Name: value"; repeat for more.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,

    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,

    /// Request body read from a file.
    #[arg(long)]
    pub body_file: Option<PathBuf>,

    /// Time allowed for each request before it counts as a timeout.
    #[arg(long, default_value = "60s", value_parser = timespan::parse)]
    pub timeout: Duration,

    /// Time allowed to open a connection.
    #[arg(long, default_value = "5s", value_parser = timespan::parse)]
    pub connect_timeout: Duration,

    /// At the end, how long in-flight requests may finish before they count as cancelled.
    #[arg(long, default_value = "5s", value_parser = timespan::parse)]
    pub stop_timeout: Duration,

    /// Write a JSON summary to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The `--client` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ClientArg {
    /// Pre-encoded requests written straight to the socket, responses parsed with httparse.
    Raw,
    /// hyper's HTTP/1.1 client connection.
    Hyper,
}

impl Args {
    /// Turns the flags into a plan for `url`; every problem is a usage error.
    pub fn plan(&self, url: &str) -> anyhow::Result<Plan> {
        let (target, uri) = Target::parse(url)?;
        let body = match (&self.body, &self.body_file) {
            (Some(text), _) => Bytes::from(text.clone()),
            (None, Some(path)) => Bytes::from(
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            ),
            (None, None) => Bytes::new(),
        };
        let method = match &self.method {
            Some(m) => m.to_ascii_uppercase(),
            None if body.is_empty() => "GET".to_string(),
            None => "POST".to_string(),
        };
        let headers = self
            .headers
            .iter()
            .map(|h| match h.split_once(':') {
                Some((name, value)) => Ok((name.to_string(), value.to_string())),
                None => bail!("invalid header {h:?} (expected \"Name: value\")"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = RequestTemplate::new(&target, &method, path, &headers, body)?;

        let schedule = match self.rate {
            Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                bail!("invalid --rate {rate}: expected a number of requests/s above 0")
            }
            Some(rate) => Schedule::rate(rate, self.max_connections),
            None => Schedule::users(self.users),
        };
        if self.users == 0 {
            bail!("invalid --users 0: at least one user is needed");
        }
        if self.max_connections == 0 {
            bail!("invalid --max-connections 0: at least one connection is needed");
        }
        if self.run_time.is_zero() {
            bail!("invalid --run-time: must be above zero");
        }
        let cores = available_cores().len().max(1);
        let workers = match self.threads {
            Some(0) => bail!("invalid --threads 0: at least one thread is needed"),
            Some(n) if n > cores => {
                bail!("invalid --threads {n}: only {cores} cores are available to blast")
            }
            Some(n) => n,
            None => cores,
        };
        let mut plan = Plan::new(target, Requests::new(vec![request]), schedule);
        plan.run_time = self.run_time;
        plan.workers = workers;
        plan.pin = !self.no_pin;
        plan.client = match self.client {
            ClientArg::Raw => Client::Raw,
            ClientArg::Hyper => Client::Hyper,
        };
        plan.timeout = self.timeout;
        plan.connect_timeout = self.connect_timeout;
        plan.stop_timeout = self.stop_timeout;
        Ok(plan)
    }
}
