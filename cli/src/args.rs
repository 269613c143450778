//! Command-line flags, parsed by clap; `plan::RunPlan::resolve` turns them into a run.

use anyhow::{bail, Context};
use blast_engine::Shape;
use blast_scenarios::{parse_duration, parse_rate, parse_stages, Criterion, Load, Scenario};
use std::path::PathBuf;
use std::time::Duration;

/// The flags of a run (`blast [URL] [FLAGS]`), also under `blast k8s`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// URL to load with one request, `http[s]://[user:pass@]host[:port]/path`. Without it and without a
    /// scenario, blast loads its built-in reference target.
    pub url: Option<String>,

    /// With -f or --profile: run only these user classes, as `locust -f FILE UserA UserB`
    /// (the first may stand where a URL would).
    #[arg(value_name = "USER_CLASS")]
    pub user_classes: Vec<String>,

    /// Scenario file to run (TOML; see docs/scenarios.md), or a locustfile (.py, translated,
    /// never executed; see docs/from-locust.md), like `locust -f`.
    #[arg(short = 'f', long = "file", conflicts_with = "profile")]
    #[arg(help_heading = "Scenario")]
    pub file: Option<PathBuf>,

    /// With a locustfile: leave out the tasks that do not translate (each named on stderr) and
    /// run the rest, instead of refusing the file.
    #[arg(long, requires = "file")]
    #[arg(help_heading = "Scenario")]
    pub lenient: bool,

    /// Built-in profile to run: deployments, cab, connectors or burst.
    #[arg(long)]
    #[arg(help_heading = "Scenario")]
    pub profile: Option<String>,

    /// Run only the scenario's tasks with one of these tags (Locust's --tags), comma-separated.
    #[arg(short = 'T', long, value_delimiter = ',', value_name = "TAG")]
    #[arg(help_heading = "Scenario")]
    pub tags: Vec<String>,

    /// Leave out the scenario's tasks with one of these tags (Locust's --exclude-tags).
    #[arg(short = 'E', long, value_delimiter = ',', value_name = "TAG")]
    #[arg(help_heading = "Scenario")]
    pub exclude_tags: Vec<String>,

    /// List the built-in profiles and exit.
    #[arg(long)]
    #[arg(help_heading = "Scenario")]
    pub list_profiles: bool,

    /// Print a built-in profile as a scenario file (to copy and adapt) and exit.
    #[arg(long, value_name = "NAME")]
    #[arg(help_heading = "Scenario")]
    pub print_profile: Option<String>,

    /// Print the run these flags make (target, job, load resolved, criteria, outputs) as JSON,
    /// secrets redacted, and exit without sending anything.
    #[arg(long)]
    pub print_plan: bool,

    /// Base URL of the target, as Locust's --host. Default: the scenario's host, else blast's
    /// built-in reference target on a loopback port.
    #[arg(long, conflicts_with = "url")]
    #[arg(help_heading = "Scenario")]
    pub host: Option<String>,

    /// Concurrent users. Default: the scenario's, else 10.
    #[arg(short = 'u', long, value_parser = whole_from_1)]
    #[arg(help_heading = "Load", allow_negative_numbers = true)]
    pub users: Option<u64>,

    /// Users started per second until all run (Locust's -r). Default: the scenario's, else all
    /// at once.
    #[arg(short = 'r', long)]
    #[arg(help_heading = "Load", allow_negative_numbers = true)]
    pub spawn_rate: Option<f64>,

    /// Run time from the start, ramp included: 30s, 5m, 1h30m or bare seconds. Default: the
    /// scenario's, the length of the stages, else 10s.
    #[arg(short = 't', long = "run-time", value_parser = parse_duration)]
    #[arg(help_heading = "Load", allow_hyphen_values = true)]
    pub run_time: Option<Duration>,

    /// Users over time as linear stages, e.g. 1m:1000,2m:1000,1m:0 (k6 style, from 0 users).
    #[arg(long, value_parser = parse_user_stages)]
    #[arg(help_heading = "Load", allow_hyphen_values = true)]
    pub stages: Option<Shape>,

    /// Open model: task starts per second in total, on a fixed schedule; a number or stages
    /// such as 30s:2000,1m:2000. Latency is measured from each intended start.
    #[arg(long, value_parser = parse_rate)]
    #[arg(help_heading = "Load", allow_hyphen_values = true)]
    pub rate: Option<Shape>,

    /// Rescale the load shape so its highest point is N users (or requests/s with --rate).
    #[arg(long, value_name = "N")]
    #[arg(help_heading = "Load", allow_negative_numbers = true)]
    pub peak: Option<f64>,

    /// Forget the ramp-up: reset the statistics when the load first reaches its peak, as
    /// Locust's --reset-stats (every output then covers the rest of the run).
    #[arg(long)]
    #[arg(help_heading = "Load")]
    pub reset_stats: bool,

    /// Run as shard I of N (from 1): this process takes an even share of the users (or of the
    /// rate, and of --max-connections), user ids and {{seq}} stay unique across shards, and a
    /// pool keeps only the values that hash to this shard. Run the N shards with the same flags.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    #[arg(help_heading = "Load")]
    pub shard: Option<blast_engine::Shard>,

    /// Wait until TIME (RFC 3339, e.g. 2026-11-28T14:00:00Z, or Unix seconds), then start:
    /// shards given the same time start together and their intervals line up. The record
    /// says how late the start was.
    #[arg(long, value_name = "TIME", value_parser = blast_report::parse_time)]
    #[arg(help_heading = "Load")]
    pub start_at: Option<std::time::SystemTime>,

    /// The run's id in the --json record, the same for every shard of one run so that
    /// `blast merge` can tell runs apart. Default: derived from the scenario and --start-at
    /// (so shards given the same flags agree), or new for each run without --start-at.
    #[arg(long, value_name = "ID")]
    #[arg(help_heading = "Load")]
    pub run_id: Option<String>,

    /// Open model: at most this many connections in total.
    #[arg(long, default_value_t = 1000, value_parser = whole_from_1)]
    #[arg(help_heading = "Load", allow_negative_numbers = true)]
    pub max_connections: u64,

    /// Success criterion, e.g. p99<500ms, success>=99%, rps>=10000, /path:p95<200ms; repeat for
    /// more. Added to the scenario's own. A failed criterion makes blast exit with code 3.
    #[arg(long = "threshold", value_name = "CRITERION", value_parser = Criterion::parse)]
    #[arg(help_heading = "Success criteria")]
    pub thresholds: Vec<Criterion>,

    /// Exit code when a request failed and the run has no success criteria (Locust's flag);
    /// 0 ignores failed requests. With criteria, they decide the exit code instead.
    #[arg(long, value_name = "N", default_value_t = 1)]
    #[arg(help_heading = "Success criteria")]
    pub exit_code_on_error: u8,

    /// Worker threads, one per core. Default: the cores available to blast.
    #[arg(long, value_parser = threads)]
    #[arg(help_heading = "Engine", allow_negative_numbers = true)]
    pub threads: Option<usize>,

    /// HTTP/1.1 client: raw (pre-encoded requests, httparse) or hyper.
    #[arg(long, value_enum, default_value_t = ClientArg::Raw)]
    #[arg(help_heading = "Engine")]
    pub client: ClientArg,

    /// How sockets send and receive: uring (io_uring: each loop's sends and receives in one
    /// system call), epoll (one system call per send and per receive), or auto: io_uring where
    /// the kernel allows it (a seccomp profile such as Docker's default refuses it), else epoll.
    #[arg(long, value_enum, default_value_t = IoArg::Auto)]
    #[arg(help_heading = "Engine")]
    pub io: IoArg,

    /// Speak HTTP/1.1 only. By default an https:// target is offered HTTP/2 too (ALPN) and
    /// the server's choice is spoken; http:// is HTTP/1.1.
    #[arg(long, conflicts_with = "http2")]
    #[arg(help_heading = "HTTP")]
    pub http1: bool,

    /// Speak HTTP/2: an https:// server must choose it by ALPN; on http:// it is h2c with
    /// prior knowledge.
    #[arg(long)]
    #[arg(help_heading = "HTTP")]
    pub http2: bool,

    /// HTTP/2: users per connection, each with one request (stream) in flight, as h2load's -m
    /// and oha's -p. -u 1000 --streams 100 is 10 connections of 100 streams. The server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS caps it (the summary says so). Default: 1, a connection
    /// per user as with HTTP/1.1.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = whole_from_1)]
    #[arg(help_heading = "HTTP", allow_negative_numbers = true)]
    pub streams: u64,

    /// Do not pin worker threads to cores.
    #[arg(long)]
    #[arg(help_heading = "Engine")]
    pub no_pin: bool,

    /// Do not send a request again when a reused keep-alive connection closed before answering
    /// it. By default an idempotent request (or one not yet written) is retried once on a fresh
    /// connection, as Go's net/http does; retries are counted in the summary.
    #[arg(long)]
    #[arg(help_heading = "Engine")]
    pub no_retry: bool,

    /// Trust the certificates in this PEM file instead of the system's roots (https://).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = "TLS")]
    pub ca_cert: Option<PathBuf>,

    /// Do not verify the server's certificate (https://). Prints a warning.
    #[arg(long, short = 'k')]
    #[arg(help_heading = "TLS")]
    pub insecure: bool,

    /// Client certificate (PEM chain) to present, with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    #[arg(help_heading = "TLS")]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of the --cert client certificate.
    #[arg(long, value_name = "FILE", requires = "cert")]
    #[arg(help_heading = "TLS")]
    pub key: Option<PathBuf>,

    /// Follow same-origin redirects of the URL's request (scenarios follow them by default).
    #[arg(long)]
    #[arg(help_heading = "The URL's request")]
    pub follow_redirects: bool,

    /// HTTP method of the URL's request. Default: GET, or POST when a body is given.
    #[arg(short = 'X', long)]
    #[arg(help_heading = "The URL's request")]
    pub method: Option<String>,

    /// Extra header, "Name: value", on the URL's request or on every request of a scenario
    /// (unless the request sets its own); repeat for more.
    #[arg(short = 'H', long = "header")]
    #[arg(help_heading = "The URL's request")]
    pub headers: Vec<String>,

    /// Body of the URL's request.
    #[arg(long, conflicts_with = "body_file")]
    #[arg(help_heading = "The URL's request")]
    pub body: Option<String>,

    /// Body of the URL's request, read from a file.
    #[arg(long)]
    #[arg(help_heading = "The URL's request")]
    pub body_file: Option<PathBuf>,

    /// Time allowed for each request before it counts as a timeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    #[arg(help_heading = "Engine", allow_hyphen_values = true)]
    pub timeout: Duration,

    /// Time allowed to open a connection.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    #[arg(help_heading = "Engine", allow_hyphen_values = true)]
    pub connect_timeout: Duration,

    /// At the end, how long in-flight requests may finish before they count as cancelled.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    #[arg(help_heading = "Engine", allow_hyphen_values = true)]
    pub stop_timeout: Duration,

    #[command(flatten)]
    pub out: OutputArgs,

    /// Sample this local process and all its descendants each second (CPU, RSS, threads,
    /// processes, open files), e.g. the target server's master; the samples go into the history
    /// outputs, the JSON record and the HTML charts.
    #[arg(long, value_name = "PID")]
    #[arg(help_heading = "Monitoring")]
    pub monitor_pid: Option<u32>,

    /// Sample a cgroup v2 each second (CPU against its cpu.max, memory against memory.max,
    /// block I/O, processes): a directory, or a path under the cgroup mount such as
    /// system.slice/docker-ID.scope.
    #[arg(long, value_name = "PATH")]
    #[arg(help_heading = "Monitoring")]
    pub monitor_cgroup: Option<PathBuf>,

    /// Sample a Docker container each second as `docker stats` does (CPU, memory, network,
    /// block I/O), from the Docker Engine API on /var/run/docker.sock (or DOCKER_HOST=unix://…).
    #[arg(long, value_name = "NAME")]
    #[arg(help_heading = "Monitoring")]
    pub monitor_container: Option<String>,

    /// Sample PostgreSQL each second: client connections by state against max_connections,
    /// and sessions waiting on locks, e.g. postgres://monitor:secret@127.0.0.1:5432/app.
    #[arg(long, value_name = "URL")]
    #[arg(help_heading = "Monitoring")]
    pub monitor_postgres: Option<String>,

    /// Run COMMAND each second and record the first number it prints under NAME, e.g.
    /// db_conns='psql -tAc "select count(*) from pg_stat_activity"'; repeat for more.
    #[arg(long = "monitor-cmd", value_name = "NAME=COMMAND", value_parser = crate::monitor::parse_command)]
    #[arg(help_heading = "Monitoring")]
    pub monitor_cmds: Vec<crate::monitor::MonitorCommand>,

    /// Serve live metrics for Prometheus at http://HOST:PORT/metrics while the run lasts (port 0
    /// picks one, printed); the web UI serves them on its own port.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "web")]
    #[arg(help_heading = "Outputs")]
    pub metrics_addr: Option<String>,

    /// Serve the web UI (and Locust's HTTP API) instead of running at once: start, steer and
    /// stop runs from a browser or a script.
    #[arg(long)]
    #[arg(help_heading = "Web UI")]
    pub web: bool,

    /// Address the web UI binds; anything but loopback needs --web-auth.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    #[arg(help_heading = "Web UI")]
    pub web_host: std::net::IpAddr,

    /// Port of the web UI (0 picks a free one).
    #[arg(long, default_value_t = 8089, value_name = "PORT")]
    #[arg(help_heading = "Web UI")]
    pub web_port: u16,

    /// HTTP Basic credentials every web route asks for, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    #[arg(help_heading = "Web UI")]
    pub web_auth: Option<String>,

    /// A host name the web UI answers to besides its own address and localhost (a reverse
    /// proxy's or a tunnel's name); repeat for more. Other names get 403, against DNS
    /// rebinding.
    #[arg(long = "web-allowed-host", value_name = "NAME", requires = "web")]
    #[arg(help_heading = "Web UI")]
    pub web_allowed_hosts: Vec<String>,

    /// With --web: start a run at once with the flags' load, as Locust's --autostart.
    #[arg(long, requires = "web")]
    #[arg(help_heading = "Web UI")]
    pub autostart: bool,

    /// With --web: quit this many seconds after a run ends, as Locust's --autoquit.
    #[arg(long, requires = "web", value_name = "SECONDS", value_parser = whole_from_0)]
    #[arg(help_heading = "Web UI", allow_negative_numbers = true)]
    pub autoquit: Option<u64>,

    /// Run without the web UI: the default, accepted so Locust command lines paste unchanged.
    #[arg(long, conflicts_with = "web")]
    #[arg(help_heading = "Web UI")]
    pub headless: bool,

    /// Accepted for Locust's command lines; blast has no log levels (errors always print).
    #[arg(short = 'L', long = "loglevel", value_name = "LEVEL", hide = true)]
    pub loglevel: Option<String>,

    /// Print only the final summary: no live view or status lines.
    #[arg(long)]
    #[arg(help_heading = "Outputs")]
    pub only_summary: bool,

    /// Print nothing but errors; results still go to the files asked for.
    #[arg(short = 'q', long, conflicts_with = "only_summary")]
    #[arg(help_heading = "Outputs")]
    pub quiet: bool,
}

/// Whether `name` is a valid header name (an HTTP token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `--stages` as a shape from 0 users (a `Vec` would read as a repeated flag to clap).
pub fn parse_user_stages(text: &str) -> Result<Shape, String> {
    Ok(Shape {
        start: 0.0,
        stages: parse_stages(text)?,
    })
}

/// The `--io` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoArg {
    /// io_uring where allowed, else epoll.
    Auto,
    /// tokio's epoll reactor.
    Epoll,
    /// io_uring; an error where the kernel refuses it.
    Uring,
}

/// The `--client` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientArg {
    /// Pre-encoded requests written straight to the socket, responses parsed with httparse.
    Raw,
    /// hyper's HTTP/1.1 client connection.
    Hyper,
}

/// What the flags chose to send: one request to a URL, or a scenario.
pub enum Chosen {
    /// One request, looped or paced (wrk's model).
    Url(Option<String>),
    /// A scenario file or built-in profile.
    Scenario {
        /// The scenario, its tags and classes chosen.
        scenario: Box<Scenario>,
        /// Its text as run: the file, the profile's source, or a locustfile's translation
        /// (what shards, digests and `blast k8s` carry).
        source: String,
    },
}

impl Args {
    /// With a scenario, positional words name user classes (Locust's `-f FILE UserA`): the
    /// first, parsed where a URL would be, joins the others.
    pub fn resolve_positionals(&mut self) {
        if self.file.is_some() || self.profile.is_some() {
            if let Some(first) = self.url.take() {
                self.user_classes.insert(0, first);
            }
        }
    }

    /// The job the flags ask for; every problem is a usage error.
    pub fn chosen(&self) -> anyhow::Result<Chosen> {
        let (scenario, source) = match (&self.file, &self.profile) {
            (Some(path), _) if crate::convert::is_locustfile(path) => {
                let t = crate::convert::translate(path, self.lenient)?;
                crate::convert::warn(path, &t.notes);
                let name = crate::convert::translated_name(path);
                (blast_scenarios::parse(&name, &t.toml)?, t.toml)
            }
            (Some(path), _) => {
                let source = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                (
                    blast_scenarios::parse(&path.to_string_lossy(), &source)?,
                    source,
                )
            }
            (None, Some(name)) => (
                blast_p43::profile(name)?,
                blast_p43::profile_source(name)?.to_string(),
            ),
            (None, None) => {
                if self.peak.is_some() && self.stages.is_none() && self.rate.is_none() {
                    // Without a shape --peak would mean -u; say so instead of guessing.
                    bail!("--peak rescales a staged shape: use it with --profile, -f, --stages or --rate (or use -u)");
                }
                if !self.tags.is_empty() || !self.exclude_tags.is_empty() {
                    bail!("--tags and --exclude-tags select a scenario's tasks: use them with -f or --profile");
                }
                if let Some(word) = self.user_classes.first() {
                    bail!("unexpected argument {word:?}: user class names go with -f or --profile, and a URL run takes one URL");
                }
                return Ok(Chosen::Url(self.url.clone().or_else(|| self.host.clone())));
            }
        };
        if self.url.is_some() {
            bail!(
                "a URL argument sends one request; with --profile or -f give the target as --host"
            );
        }
        if self.method.is_some() || self.body.is_some() || self.body_file.is_some() {
            bail!("-X, --body and --body-file shape the URL's request; a scenario defines its own requests");
        }
        let mut scenario = scenario;
        scenario
            .select_tags(&self.tags, &self.exclude_tags)
            .map_err(anyhow::Error::msg)?;
        scenario
            .select_classes(&self.user_classes)
            .map_err(anyhow::Error::msg)?;
        Ok(Chosen::Scenario {
            scenario: Box::new(scenario),
            source,
        })
    }

    /// The load the flags set, field by field, to lay over a scenario's defaults.
    pub fn load(&self) -> Load {
        Load {
            users: self.users,
            spawn_rate: self.spawn_rate,
            stages: self.stages.as_ref().map(|s| s.stages.clone()),
            rate: self.rate.clone(),
            run_time: self.run_time,
        }
    }

    /// Checks numbers clap cannot check alone.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.stages.is_some() && (self.users.is_some() || self.spawn_rate.is_some()) {
            bail!("--stages gives the users over time: drop -u and -r, or drop --stages");
        }
        if self.rate.is_some() && (self.users.is_some() || self.stages.is_some()) {
            bail!(
                "--rate is the open model (tasks per second): drop -u and --stages, or drop --rate"
            );
        }
        if let Some(r) = self.spawn_rate {
            if !(r.is_finite() && r > 0.0) {
                bail!("invalid --spawn-rate {r}: expected users/s above 0");
            }
        }
        if let Some(p) = self.peak {
            if !(p.is_finite() && p >= 1.0) {
                bail!("invalid --peak {p}: expected a number >= 1");
            }
        }
        if self.run_time.is_some_and(|t| t.is_zero()) {
            bail!("invalid --run-time: must be above zero");
        }
        Ok(())
    }

    /// The `-H` headers as (name, value).
    pub fn header_pairs(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.headers
            .iter()
            .map(|h| match h.split_once(':') {
                Some((name, value)) if is_token(name.trim()) => {
                    Ok((name.trim().to_string(), value.trim().to_string()))
                }
                _ => bail!("invalid header {h:?} (expected \"Name: value\")"),
            })
            .collect()
    }
}

/// `I/N`, 1-based: `2/8` is the second of eight shards.
fn parse_shard(text: &str) -> Result<blast_engine::Shard, String> {
    let bad = || format!("invalid --shard {text:?}: expected I/N with 1 <= I <= N, e.g. 2/8");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || i > n {
        return Err(bad());
    }
    Ok(blast_engine::Shard {
        index: i - 1,
        count: n,
    })
}

/// Where a run's results go (shared with `blast merge`).
#[derive(clap::Args, Debug, Clone, Default, serde::Serialize)]
#[command(next_help_heading = "Outputs")]
pub struct OutputArgs {
    /// Write Locust-compatible CSV files PREFIX_stats.csv, PREFIX_stats_history.csv,
    /// PREFIX_failures.csv and PREFIX_exceptions.csv (folders are created).
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,

    /// With --csv: write every request name to the history file each second, not only the
    /// Aggregated row.
    #[arg(long, requires = "csv")]
    pub csv_full_history: bool,

    /// Write the run record (summary, per-name stats, time series, criteria) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Write each interval's latency histogram in HdrHistogram's interval-log format.
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
}

/// A count of 1 or more (`-u`, `--max-connections`); a negative or fractional one says so.
fn whole_from_1(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number from 1, got {text}")),
    }
}

/// A count of 0 or more (`--autoquit` seconds).
fn whole_from_0(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| format!("expected a whole number from 0, got {text}"))
}

/// `--threads`: worker threads, 1 or more.
fn threads(text: &str) -> Result<usize, String> {
    whole_from_1(text).map(|n| n as usize)
}
