//! A Docker container read each interval (`--monitor-container NAME`): CPU, memory, network and
//! block I/O as `docker stats` shows them, from the Docker Engine API on its unix socket.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The Engine's socket: `DOCKER_HOST=unix://PATH`, else Docker's default.
pub fn socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// Bytes of a container name or id sent as they are; the rest is percent-encoded.
const NAME: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

/// Counters of one stats reading: CPU ns, host CPU ns, bytes received, sent, read, written.
#[derive(Clone, Copy)]
struct Counters {
    cpu: f64,
    system: f64,
    net: (f64, f64),
    blk: (f64, f64),
    at: Instant,
}

/// One container and its previous reading.
pub struct Container {
    name: String,
    socket: PathBuf,
    last: Option<Counters>,
}

/// The names of the values a container reports.
pub const KEYS: [&str; 8] = [
    "container.cpu_pct",
    "container.cpu_limit_cores",
    "container.mem_mb",
    "container.mem_limit_mb",
    "container.net_rx_mb_s",
    "container.net_tx_mb_s",
    "container.blk_read_mb_s",
    "container.blk_write_mb_s",
];

impl Container {
    /// The container `name` behind the Engine at `socket`; an error when it cannot be read.
    pub fn open(name: &str, socket: PathBuf) -> Result<Container, String> {
        let mut container = Container {
            name: name.to_string(),
            socket,
            last: None,
        };
        // The first reading is the baseline of the first interval's rates.
        let first = container.stats()?;
        container.read(&first, Instant::now());
        Ok(container)
    }

    /// `GET /containers/NAME/stats` without streaming.
    fn stats(&self) -> Result<serde_json::Value, String> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| {
            format!(
                "cannot reach the Docker Engine at {}: {e}",
                self.socket.display()
            )
        })?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let name = percent_encoding::utf8_percent_encode(&self.name, NAME);
        // One write: a peer may answer as soon as it has the request line.
        let request = format!(
            "GET /containers/{name}/stats?stream=false&one-shot=true HTTP/1.0\r\nHost: docker\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or("a malformed answer from the Docker Engine")?;
        let status = head.split_whitespace().nth(1).unwrap_or("");
        let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
        if status != "200" {
            let message = json["message"]
                .as_str()
                .unwrap_or(head.lines().next().unwrap_or(""));
            return Err(format!("the Docker Engine answered {status}: {message}"));
        }
        Ok(json)
    }

    /// One sample; nothing when the Engine cannot be read this time.
    pub fn sample(&mut self) -> BTreeMap<String, f64> {
        match self.stats() {
            Ok(json) => self.read(&json, Instant::now()),
            Err(_) => BTreeMap::new(),
        }
    }

    /// The values of one stats document read at `at`; rates are since the previous one.
    fn read(&mut self, s: &serde_json::Value, at: Instant) -> BTreeMap<String, f64> {
        let num = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
        let sum = |items: &serde_json::Value, field: &str| -> f64 {
            items
                .as_object()
                .map_or(0.0, |m| m.values().map(|v| num(&v[field])).sum())
        };
        let blk = |op: &str| -> f64 {
            s["blkio_stats"]["io_service_bytes_recursive"]
                .as_array()
                .map_or(0.0, |a| {
                    a.iter()
                        .filter(|e| e["op"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(op)))
                        .map(|e| num(&e["value"]))
                        .sum()
                })
        };
        let now = Counters {
            cpu: num(&s["cpu_stats"]["cpu_usage"]["total_usage"]),
            system: num(&s["cpu_stats"]["system_cpu_usage"]),
            net: (
                sum(&s["networks"], "rx_bytes"),
                sum(&s["networks"], "tx_bytes"),
            ),
            blk: (blk("read"), blk("write")),
            at,
        };
        let mut out = BTreeMap::new();
        let cpus = num(&s["cpu_stats"]["online_cpus"]).max(1.0);
        if let Some(before) = self.last {
            // As `docker stats`: the container's share of the host's CPU time, times its CPUs.
            let system = now.system - before.system;
            if system > 0.0 {
                out.insert(
                    KEYS[0].into(),
                    (now.cpu - before.cpu) / system * cpus * 100.0,
                );
            }
            let wall = now.at.duration_since(before.at).as_secs_f64().max(1e-3);
            let rate = |a: f64, b: f64| (a - b).max(0.0) / 1e6 / wall;
            out.insert(KEYS[4].into(), rate(now.net.0, before.net.0));
            out.insert(KEYS[5].into(), rate(now.net.1, before.net.1));
            out.insert(KEYS[6].into(), rate(now.blk.0, before.blk.0));
            out.insert(KEYS[7].into(), rate(now.blk.1, before.blk.1));
        }
        self.last = Some(now);
        out.insert(KEYS[1].into(), cpus);
        let memory = &s["memory_stats"];
        // `docker stats` leaves out the page cache it may drop (cgroup v2, then v1's name).
        let cache = [
            &memory["stats"]["inactive_file"],
            &memory["stats"]["total_inactive_file"],
        ]
        .into_iter()
        .find_map(|v| v.as_f64())
        .unwrap_or(0.0);
        if let Some(usage) = memory["usage"].as_f64() {
            out.insert(KEYS[2].into(), (usage - cache).max(0.0) / 1048576.0);
        }
        if let Some(limit) = memory["limit"].as_f64() {
            out.insert(KEYS[3].into(), limit / 1048576.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A stats document at `cpu` ns of the container and `system` ns of the host.
    fn stats(cpu: u64, system: u64, rx: u64) -> String {
        serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": cpu}, "system_cpu_usage": system, "online_cpus": 2},
            "memory_stats": {"usage": 150 * 1048576u64, "limit": 512 * 1048576u64,
                             "stats": {"inactive_file": 50 * 1048576u64}},
            "networks": {"eth0": {"rx_bytes": rx, "tx_bytes": 0}, "eth1": {"rx_bytes": rx, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 0}, {"op": "write", "value": 0}]}
        })
        .to_string()
    }

    #[test]
    fn stats_from_the_engine_read_as_docker_stats_shows_them() {
        // A stand-in for the Engine on a unix socket: two readings, then a missing container.
        let socket = std::env::temp_dir().join(format!("blast-docker-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let answers = [
            ("200 OK", stats(1_000_000_000, 100_000_000_000, 0)),
            ("200 OK", stats(2_000_000_000, 102_000_000_000, 5_000_000)),
            (
                "404 Not Found",
                r#"{"message":"No such container: nope"}"#.to_string(),
            ),
        ];
        let server = std::thread::spawn(move || {
            let mut paths = Vec::new();
            for (status, body) in answers {
                let (mut conn, _) = listener.accept().unwrap();
                // The whole request, up to its blank line.
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                    request.push(byte[0]);
                }
                paths.push(
                    String::from_utf8_lossy(&request)
                        .lines()
                        .next()
                        .unwrap()
                        .to_string(),
                );
                write!(
                    conn,
                    "HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n{body}"
                )
                .unwrap();
            }
            paths
        });
        let mut api = Container::open("eucora-api", socket.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let second = api.sample();
        assert_eq!(
            second["container.mem_mb"], 100.0,
            "usage less the inactive file cache"
        );
        assert_eq!(second["container.mem_limit_mb"], 512.0);
        assert_eq!(second["container.cpu_limit_cores"], 2.0);
        // 1 s of the container's CPU in 2 s of the host's (2 CPUs): 100% of one core.
        assert!((second["container.cpu_pct"] - 100.0).abs() < 1e-9);
        assert!(
            second["container.net_rx_mb_s"] > 1.0,
            "10 MB over two networks"
        );
        let missing = Container::open("nope", socket.clone()).err().unwrap();
        assert_eq!(
            missing,
            "the Docker Engine answered 404: No such container: nope"
        );
        let paths = server.join().unwrap();
        assert_eq!(
            paths[0],
            "GET /containers/eucora-api/stats?stream=false&one-shot=true HTTP/1.0"
        );
        std::fs::remove_file(socket).unwrap();
    }
}
