//! `blast-target`: run the reference target on its own, e.g. for manual runs and benchmarks.

use blast_target::{Config, Latency, Server, Stall, TlsIdentity};
use std::time::Duration;

const USAGE: &str = "usage: blast-target [--port N] [--threads N] [--latency-ms MS] \
[--latency-max-ms MS] [--stall-after-ms MS --stall-ms MS] [--error-rate F] [--close-after N] \
[--route-latency-ms PATH_PREFIX=MS[-MAX_MS]]... [--cab-backlog N] [--keep-alive-timeout MS] \
[--tls | --tls-cert PEM --tls-key PEM]";

fn main() {
    match parse(std::env::args().skip(1)) {
        Ok((port, config)) => serve(port, config),
        Err(e) => {
            eprintln!("blast-target: {e}\n{USAGE}");
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

fn parse(mut args: impl Iterator<Item = String>) -> Result<(u16, Config), String> {
    let mut port = 0;
    let mut config = Config::default();
    let (mut latency, mut latency_max, mut stall_after, mut stall) = (None, None, None, None);
    let (mut self_signed, mut cert, mut key) = (false, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{flag}: expected milliseconds, got {v:?}"))
        };
        match flag.as_str() {
            "--port" => port = value()?.parse().map_err(|_| "--port: expected 0-65535")?,
            "--threads" => {
                config.threads = value()?.parse().map_err(|_| "--threads: expected N")?
            }
            "--latency-ms" => latency = Some(ms(value()?)?),
            "--latency-max-ms" => latency_max = Some(ms(value()?)?),
            "--stall-after-ms" => stall_after = Some(ms(value()?)?),
            "--stall-ms" => stall = Some(ms(value()?)?),
            "--error-rate" => {
                config.error_rate = value()?
                    .parse()
                    .ok()
                    .filter(|r: &f64| (0.0..=1.0).contains(r))
                    .ok_or("--error-rate: expected a number from 0 to 1")?
            }
            "--close-after" => {
                config.close_after =
                    Some(value()?.parse().map_err(|_| "--close-after: expected N")?)
            }
            "--cab-backlog" => {
                config.cab_backlog = value()?.parse().map_err(|_| "--cab-backlog: expected N")?
            }
            "--route-latency-ms" => {
                let v = value()?;
                config.route_latency.push(route_latency(&v).ok_or_else(|| {
                    format!("--route-latency-ms: expected PATH_PREFIX=MS or PATH_PREFIX=MS-MAX_MS, got {v:?}")
                })?);
            }
            "--keep-alive-timeout" => config.keep_alive_timeout = Some(ms(value()?)?),
            "--tls" => self_signed = true,
            "--tls-cert" => cert = Some(read(&value()?)?),
            "--tls-key" => key = Some(read(&value()?)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    config.latency = match (latency, latency_max) {
        (None, None) => Latency::None,
        (Some(d), None) => Latency::Fixed(d),
        (min, Some(max)) => Latency::Uniform {
            min: min.unwrap_or_default(),
            max,
        },
    };
    config.tls = match (self_signed, cert, key) {
        (false, None, None) => None,
        (true, None, None) => Some(TlsIdentity::self_signed()),
        (false, Some(cert_pem), Some(key_pem)) => Some(TlsIdentity { cert_pem, key_pem }),
        _ => return Err("use --tls alone, or --tls-cert with --tls-key".into()),
    };
    config.stall = stall.map(|duration| Stall {
        after: stall_after.unwrap_or_default(),
        duration,
    });
    Ok((port, config))
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// Parses `PATH_PREFIX=MS` (fixed) or `PATH_PREFIX=MS-MAX_MS` (uniform).
fn route_latency(text: &str) -> Option<(String, Latency)> {
    let (prefix, value) = text.split_once('=')?;
    let ms = |v: &str| v.parse().ok().map(Duration::from_millis);
    let latency = match value.split_once('-') {
        Some((min, max)) => Latency::Uniform {
            min: ms(min)?,
            max: ms(max)?,
        },
        None => Latency::Fixed(ms(value)?),
    };
    Some((prefix.to_string(), latency))
}
