//! `blast-target`: the reference target on its own, serving the P4.3 pack's EUCORA API beside
//! the test routes, e.g. for runs by hand and benchmarks.

use blast_p43::Eucora;
use blast_target::{Config, Latency, Server, Stall, TlsIdentity};
use clap::Parser;
use std::sync::Arc;
use std::time::Duration;

/// The reference target: blast's EUCORA API and test routes, on 127.0.0.1 (see
/// docs/target-api.md).
#[derive(Parser, Debug)]
#[command(name = "blast-target", version, max_term_width = 100)]
struct Flags {
    /// Port to listen on; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Server threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Delay before every response, in milliseconds.
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u64>,
    /// With it, the delay is drawn uniformly from --latency-ms (default 0) to this.
    #[arg(long, value_name = "MS")]
    latency_max_ms: Option<u64>,
    /// Requests arriving from this long after start until --stall-ms later are held.
    #[arg(long, value_name = "MS", requires = "stall_ms")]
    stall_after_ms: Option<u64>,
    /// How long the stall lasts.
    #[arg(long, value_name = "MS")]
    stall_ms: Option<u64>,
    /// This share of requests (0 to 1), spread evenly, get 500.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    error_rate: f64,
    /// The Nth response on each connection closes it.
    #[arg(long, value_name = "N")]
    close_after: Option<u64>,
    /// Extra delay for paths starting with PREFIX: `PREFIX=MS` or `PREFIX=MS-MAX_MS`;
    /// repeatable, the first match wins.
    #[arg(long = "route-latency-ms", value_name = "PREFIX=MS[-MAX_MS]", value_parser = route_latency)]
    route_latency: Vec<(String, Latency)>,
    /// CAB approvals kept pending: when decisions leave fewer, deployments from other teams
    /// arrive (the plan's "100+ approvals pending"); 0 lets the backlog drain.
    #[arg(long, default_value_t = blast_p43::CAB_BACKLOG)]
    cab_backlog: u64,
    /// Close a connection idle this long, in milliseconds.
    #[arg(long, value_name = "MS")]
    keep_alive_timeout: Option<u64>,
    /// Serve https:// with a certificate made at start (written to $TMPDIR for --ca-cert).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: bool,
    /// Serve https:// with this certificate (PEM)...
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// ...and this key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn main() {
    let flags = Flags::parse();
    match config(&flags) {
        Ok(config) => serve(flags.port, config),
        Err(e) => {
            eprintln!("blast-target: error: {e}");
            std::process::exit(2);
        }
    }
}

fn serve(port: u16, config: Config) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match Server::start(addr, config) {
        Ok(server) => {
            println!("blast-target listening on {}", server.url());
            if let Some(tls) = &server_tls(&server) {
                println!("certificate: {tls} (pass it to blast --ca-cert)");
            }
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("blast-target: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    }
}

/// With a self-signed certificate, writes it where a client can trust it; returns the path.
fn server_tls(server: &Server) -> Option<String> {
    let cert = &server.tls_identity()?.cert_pem;
    let path = std::env::temp_dir().join(format!("blast-target-{}.pem", server.addr().port()));
    match std::fs::write(&path, cert) {
        Ok(()) => Some(path.display().to_string()),
        Err(e) => {
            eprintln!("blast-target: cannot write {}: {e}", path.display());
            None
        }
    }
}

/// The server's configuration from its flags; files are read here.
fn config(flags: &Flags) -> Result<Config, String> {
    let ms = Duration::from_millis;
    let mut config = Config {
        threads: flags.threads,
        error_rate: flags.error_rate,
        close_after: flags.close_after,
        route_latency: flags.route_latency.clone(),
        keep_alive_timeout: flags.keep_alive_timeout.map(ms),
        apps: vec![Arc::new(Eucora::new(flags.cab_backlog))],
        ..Config::default()
    };
    config.latency = match (flags.latency_ms, flags.latency_max_ms) {
        (None, None) => Latency::None,
        (Some(d), None) => Latency::Fixed(ms(d)),
        (min, Some(max)) => Latency::Uniform {
            min: ms(min.unwrap_or_default()),
            max: ms(max),
        },
    };
    config.stall = flags.stall_ms.map(|duration| Stall {
        after: ms(flags.stall_after_ms.unwrap_or_default()),
        duration: ms(duration),
    });
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    config.tls = match (flags.tls, &flags.tls_cert, &flags.tls_key) {
        #[cfg(feature = "self-signed")]
        (true, _, _) => Some(TlsIdentity::self_signed()),
        #[cfg(not(feature = "self-signed"))]
        (true, _, _) => return Err("--tls: this blast-target was built without the self-signed feature; give --tls-cert and --tls-key".into()),
        (false, Some(cert), Some(key)) => Some(TlsIdentity {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        }),
        _ => None,
    };
    Ok(config)
}

/// `--error-rate`: a share from 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    text.parse()
        .ok()
        .filter(|r: &f64| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("expected a number from 0 to 1, got {text}"))
}

/// `PATH_PREFIX=MS` (fixed) or `PATH_PREFIX=MS-MAX_MS` (uniform).
fn route_latency(text: &str) -> Result<(String, Latency), String> {
    let bad = || format!("expected PATH_PREFIX=MS or PATH_PREFIX=MS-MAX_MS, got {text:?}");
    let (prefix, value) = text.split_once('=').ok_or_else(bad)?;
    let ms = |v: &str| v.parse().ok().map(Duration::from_millis).ok_or_else(bad);
    let latency = match value.split_once('-') {
        Some((min, max)) => Latency::Uniform {
            min: ms(min)?,
            max: ms(max)?,
        },
        None => Latency::Fixed(ms(value)?),
    };
    Ok((prefix.to_string(), latency))
}
