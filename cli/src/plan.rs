//! A run as plain data, resolved from its flags once: what each user sends, to which target,
//! under which load, judged by which criteria, written where, watched how.
//!
//! Everything that starts a run starts from a [`RunPlan`]: `blast` itself, `--print-plan`
//! (which prints it as JSON, secrets redacted, and sends nothing), the web UI (each of its runs
//! is the command line's plan with the form's load), and `blast k8s` (which checks the plan
//! before handing the same flags to every shard). The run itself reads nothing else.

use anyhow::{bail, Context};
use blast_engine::{
    available_cores, redact, Client, Io, Plan, Protocol, RequestTemplate, Requests, Schedule,
    Shard, Target, TlsOptions,
};
use blast_scenarios::{Criterion, Load, Scenario};
use bytes::Bytes;
use serde::{Serialize, Serializer};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::args::{Args, ClientArg, IoArg, OutputArgs};
use crate::monitor::Sources;

/// One run, resolved.
#[derive(Clone, Serialize)]
pub struct RunPlan {
    /// What each user sends.
    pub job: Job,
    /// The target's URL (a URL job's own URL, else the base of the scenario's paths); none:
    /// blast starts its built-in reference target.
    pub target: Option<String>,
    /// The load the flags set, laid field by field over the scenario's ([`RunPlan::load`]).
    pub flags_load: Load,
    /// `--peak`: the shape rescaled so its highest point is this.
    pub peak: Option<f64>,
    /// Open model: connections at most.
    pub max_connections: u64,
    /// The scenario's criteria, then `--threshold`'s.
    #[serde(serialize_with = "as_text")]
    pub criteria: Vec<Criterion>,
    /// How the engine runs.
    pub engine: EngineSettings,
    /// The result files.
    pub out: OutputArgs,
    /// Where to serve live metrics for Prometheus, if anywhere.
    pub metrics_addr: Option<String>,
    /// What is sampled besides the generator.
    pub monitor: Sources,
    /// What the console shows.
    pub console: Console,
    /// Exit code when requests failed and there are no criteria.
    pub exit_code_on_error: u8,
    /// `--start-at`.
    pub start_at: Option<SystemTime>,
    /// `--run-id`.
    pub run_id: Option<String>,
    /// The built-in profile run, if one is.
    pub profile: Option<String>,
}

/// What each user sends.
#[derive(Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// One request, looped or paced (wrk's model).
    Url {
        /// The method, uppercase.
        method: String,
        /// `-H` headers.
        #[serde(serialize_with = "headers_redacted")]
        headers: Vec<(String, String)>,
        /// `--body`, or the file `--body-file` names (read when the run is built).
        body: Body,
        /// `--follow-redirects`.
        follow_redirects: bool,
    },
    /// A scenario file, locustfile or built-in profile, its tags and classes chosen.
    Scenario {
        /// The scenario, parsed once.
        #[serde(skip)]
        scenario: Box<Scenario>,
        /// Its name.
        name: String,
        /// Its text as run: the file, the profile's source, or a locustfile's translation.
        source: String,
        /// `-H` headers added to every request that does not set its own.
        #[serde(serialize_with = "headers_redacted")]
        headers: Vec<(String, String)>,
        /// `--tags` and `--exclude-tags` (already applied; part of the run's identity).
        tags: Vec<String>,
        /// See `tags`.
        exclude_tags: Vec<String>,
    },
}

/// A URL job's body.
#[derive(Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// No body.
    None,
    /// `--body`.
    Text(String),
    /// `--body-file`.
    File(PathBuf),
}

/// The engine settings every job shares.
#[derive(Clone, Serialize)]
pub struct EngineSettings {
    /// Worker threads.
    pub workers: usize,
    /// Pin workers to cores.
    pub pin: bool,
    /// The HTTP/1.1 client.
    pub client: ClientArg,
    /// `--http1` or `--http2`; none lets ALPN choose.
    pub http: Option<Protocol>,
    /// `--streams`.
    pub streams: usize,
    /// `--io`.
    pub io: IoArg,
    /// Retry once on a reused connection that closed.
    pub retry: bool,
    /// `--reset-stats`.
    pub reset_stats: bool,
    /// `--shard I/N`, from 0.
    pub shard: Option<Shard>,
    /// Per request.
    pub timeout: Duration,
    /// Per connection.
    pub connect_timeout: Duration,
    /// For in-flight requests at the end.
    pub stop_timeout: Duration,
    /// `--ca-cert`.
    pub ca_cert: Option<PathBuf>,
    /// `--cert` and `--key`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `--insecure`.
    pub insecure: bool,
}

/// What the console shows while running.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Console {
    /// Status lines (or the live view on a terminal), then the summary.
    Live,
    /// The summary only (`--only-summary`).
    Summary,
    /// Nothing but errors (`-q`).
    Quiet,
}

impl RunPlan {
    /// Resolves the flags; every problem is bad input, found before anything is opened.
    pub fn resolve(args: &Args) -> anyhow::Result<RunPlan> {
        args.validate()?;
        let headers = args.header_pairs()?;
        let (job, target) = match args.chosen()? {
            crate::args::Chosen::Url(url) => {
                let body = match (&args.body, &args.body_file) {
                    (Some(text), _) => Body::Text(text.clone()),
                    (None, Some(path)) => Body::File(path.clone()),
                    (None, None) => Body::None,
                };
                let method = match &args.method {
                    Some(m) => m.to_ascii_uppercase(),
                    None if matches!(body, Body::None) => "GET".to_string(),
                    None => "POST".to_string(),
                };
                let job = Job::Url {
                    method,
                    headers,
                    body,
                    follow_redirects: args.follow_redirects,
                };
                (job, url)
            }
            crate::args::Chosen::Scenario { scenario, source } => {
                let target = args.host.clone().or_else(|| scenario.host.clone());
                let job = Job::Scenario {
                    name: scenario.name.clone(),
                    scenario,
                    source,
                    headers,
                    tags: args.tags.clone(),
                    exclude_tags: args.exclude_tags.clone(),
                };
                (job, target)
            }
        };
        let cores = available_cores().len().max(1);
        let workers = match args.threads {
            Some(n) if n > cores => {
                bail!("invalid --threads {n}: only {cores} cores are available to blast")
            }
            Some(n) => n,
            None => cores,
        };
        let mut criteria = match &job {
            Job::Scenario { scenario, .. } => scenario.criteria.clone(),
            Job::Url { .. } => Vec::new(),
        };
        criteria.extend(args.thresholds.iter().cloned());
        let console = if args.quiet {
            Console::Quiet
        } else if args.only_summary {
            Console::Summary
        } else {
            Console::Live
        };
        let plan = RunPlan {
            job,
            target,
            flags_load: args.load(),
            peak: args.peak,
            max_connections: args.max_connections,
            criteria,
            engine: EngineSettings {
                workers,
                pin: !args.no_pin,
                client: args.client,
                http: match (args.http1, args.http2) {
                    (true, _) => Some(Protocol::Http1),
                    (_, true) => Some(Protocol::Http2),
                    _ => None,
                },
                streams: args.streams as usize,
                io: args.io,
                retry: !args.no_retry,
                reset_stats: args.reset_stats,
                shard: args.shard,
                timeout: args.timeout,
                connect_timeout: args.connect_timeout,
                stop_timeout: args.stop_timeout,
                ca_cert: args.ca_cert.clone(),
                client_cert: args.cert.clone().zip(args.key.clone()),
                insecure: args.insecure,
            },
            out: args.out.clone(),
            metrics_addr: args.metrics_addr.clone(),
            monitor: Sources {
                pid: args.monitor_pid,
                cgroup: args.monitor_cgroup.clone(),
                container: args.monitor_container.clone(),
                postgres: args.monitor_postgres.clone(),
                commands: args.monitor_cmds.clone(),
            },
            console,
            exit_code_on_error: args.exit_code_on_error,
            start_at: args.start_at,
            run_id: args.run_id.clone(),
            profile: args.profile.clone(),
        };
        // The load is resolved now so that a bad shape is found before anything starts.
        plan.schedule()?;
        Ok(plan)
    }

    /// The scenario, for a scenario job.
    pub fn scenario(&self) -> Option<&Scenario> {
        match &self.job {
            Job::Scenario { scenario, .. } => Some(scenario),
            Job::Url { .. } => None,
        }
    }

    /// The load that runs: the scenario's (or the defaults), overridden by the flags'.
    pub fn load(&self) -> Load {
        let base = self.scenario().map(|s| s.load.clone()).unwrap_or_default();
        base.overridden_by(&self.flags_load)
    }

    /// The engine schedule and the run time.
    pub fn schedule(&self) -> anyhow::Result<(Schedule, Duration)> {
        self.load()
            .resolve(self.peak, self.max_connections)
            .map_err(anyhow::Error::msg)
    }

    /// The engine plan against `url` (the target, or the reference target started for the run),
    /// with the files it names read; the script to show in the summary, for a scenario.
    pub fn engine_plan(
        &self,
        url: &str,
    ) -> anyhow::Result<(Plan, Option<blast_scenarios::ScenarioScript>)> {
        let (target, uri) = Target::parse(url)?;
        let (schedule, run_time) = self.schedule()?;
        let (mut plan, script) = match &self.job {
            Job::Url {
                method,
                headers,
                body,
                follow_redirects,
            } => {
                let body = match body {
                    Body::None => Bytes::new(),
                    Body::Text(text) => Bytes::from(text.clone()),
                    Body::File(path) => Bytes::from(
                        std::fs::read(path)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                    ),
                };
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                let request = RequestTemplate::new(&target, method, path, headers, body)?;
                let requests = Requests::new(vec![request]).following_redirects(*follow_redirects);
                (Plan::new(target, requests, schedule), None)
            }
            Job::Scenario {
                scenario, headers, ..
            } => {
                if uri.path() != "/" {
                    bail!(
                        "--host {url}: give only scheme, host and port; the scenario has the paths"
                    );
                }
                let script = scenario.script_with_headers(&target, headers);
                (Plan::new(target, script.clone(), schedule), Some(script))
            }
        };
        for c in &self.criteria {
            c.check_names(plan.script.names())
                .map_err(anyhow::Error::msg)?;
        }
        let e = &self.engine;
        plan.run_time = run_time;
        plan.workers = e.workers;
        plan.pin = e.pin;
        plan.client = match e.client {
            ClientArg::Raw => Client::Raw,
            ClientArg::Hyper => Client::Hyper,
        };
        plan.http = e.http;
        plan.streams = e.streams;
        plan.io = match e.io {
            IoArg::Auto => Io::Auto,
            IoArg::Epoll => Io::Epoll,
            IoArg::Uring => Io::Uring,
        };
        plan.retry = e.retry;
        plan.reset_stats = e.reset_stats;
        plan.shard = e.shard.unwrap_or_default();
        plan.start_at = self.start_at;
        plan.timeout = e.timeout;
        plan.connect_timeout = e.connect_timeout;
        plan.stop_timeout = e.stop_timeout;
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        plan.tls = TlsOptions {
            ca_certs_pem: e.ca_cert.as_ref().map(read).transpose()?,
            insecure: e.insecure,
            client_cert_pem: match &e.client_cert {
                Some((cert, key)) => Some((read(cert)?, read(key)?)),
                None => None,
            },
        };
        Ok((plan, script))
    }

    /// The label of the summary and the record: the scenario's name and the target, or the
    /// URL, without credentials.
    pub fn label(&self, url: &str) -> String {
        redact::text(&match &self.job {
            Job::Scenario { name, .. } => format!("{name} ({url})"),
            Job::Url { .. } => url.to_string(),
        })
    }

    /// FNV-1a of what is run (the scenario's source and the tags chosen, or the URL's
    /// request), in hex: the same for every shard given the same flags.
    pub fn digest(&self, url: &str) -> String {
        let what = match &self.job {
            Job::Scenario {
                source,
                tags,
                exclude_tags,
                ..
            } => format!("{source}\0{tags:?}\0{exclude_tags:?}"),
            Job::Url {
                method,
                headers,
                body,
                ..
            } => {
                let body = match body {
                    Body::None => String::new(),
                    Body::Text(text) => text.clone(),
                    Body::File(path) => path.display().to_string(),
                };
                format!("{method} {url}\0{headers:?}\0{body}")
            }
        };
        format!("{:016x}", blast_scenarios::fnv1a(what.as_bytes()))
    }

    /// The plan as `--print-plan` shows it: JSON, with the load resolved and secrets redacted.
    pub fn to_json(&self) -> anyhow::Result<String> {
        let (schedule, run_time) = self.schedule()?;
        let shown = Shown {
            plan: self,
            load: self.load(),
            schedule,
            run_time,
        };
        Ok(redact::text(&serde_json::to_string_pretty(&shown)?))
    }
}

/// A plan with what it resolves to, for `--print-plan`.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    plan: &'a RunPlan,
    /// The load that runs.
    load: Load,
    /// The engine's schedule of users or of the rate.
    schedule: Schedule,
    /// The run time, ramps included.
    run_time: Duration,
}

/// Criteria as they are written.
fn as_text<S: Serializer>(criteria: &[Criterion], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(criteria.iter().map(|c| c.to_string()))
}

/// Headers with secret values replaced.
fn headers_redacted<S: Serializer>(headers: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(headers.iter().map(|(name, value)| {
        let value = match redact::is_secret_name(name) {
            true => redact::REDACTED,
            false => value,
        };
        format!("{name}: {value}")
    }))
}
