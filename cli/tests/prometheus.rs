//! A real Prometheus (Debian's package) scrapes a live run's `--metrics-addr`, and its
//! `histogram_quantile` p99 is within 1 % of blast's own p99 over the same requests. Every load
//! goes to 127.0.0.1, at 300 requests/s for 10 s.

use blast_report::RunRecord;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Prometheus, stopped when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The port a process listens on, from the sockets it holds (/proc): Prometheus is started on
/// port 0 and does not print the port it got.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(String::from)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Field 3 is the state (0A: listening), field 9 the socket's inode.
        (f.get(3) == Some(&"0A") && inodes.iter().any(|i| Some(&i.as_str()) == f.get(9)))
            .then(|| u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok())
            .flatten()
    })
}

/// Prometheus' API answer to `query` (evaluated at `time`, when given), through curl.
fn query(port: u16, query: &str, time: Option<f64>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--get", "--data-urlencode"])
        .arg(format!("query={query}"));
    if let Some(t) = time {
        cmd.args(["--data-urlencode", &format!("time={t}")]);
    }
    let out = cmd
        .arg(format!("http://127.0.0.1:{port}/api/v1/query"))
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn start_prometheus(dir: &Path, metrics: &str) -> (Prometheus, u16) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: blast\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed (apt-get install prometheus; .ci/run does)");
    let prometheus = Prometheus(child);
    let start = Instant::now();
    loop {
        if let Some(port) = listening_port(prometheus.0.id()) {
            if query(port, "up", None)["status"] == "success" {
                return (prometheus, port);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prometheus did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Prometheus and curl: .ci/run installs them and runs the ignored tests"]
fn prometheus_scrapes_a_live_run_and_its_p99_is_within_one_percent_of_blasts() {
    let dir = std::env::temp_dir().join(format!("blast-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = blast_target::Config {
        latency: blast_target::Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(40),
        },
        ..Default::default()
    };
    let server = blast_target::Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let record = dir.join("run.json");
    let mut blast = Command::new(env!("CARGO_BIN_EXE_blast"))
        .arg(format!("{}/", server.url()))
        .args(["--rate", "300", "-t", "10s", "--no-pin", "-q"])
        .args(["--metrics-addr", "127.0.0.1:0", "--json"])
        .arg(&record)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(blast.stderr.take().unwrap()).lines();
    let metrics = loop {
        let line = lines
            .next()
            .expect("blast prints where its metrics are")
            .unwrap();
        if let Some(url) = line.strip_prefix("metrics for Prometheus: http://") {
            break url.trim_end_matches("/metrics").to_string();
        }
    };
    let (_prometheus, port) = start_prometheus(&dir, &metrics);
    assert!(blast.wait().unwrap().success());

    // The last scrape before blast exited (a range selector skips the staleness marker).
    let scraped = query(port, "blast_requests_total[1m]", None);
    let values = scraped["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("Prometheus has no samples: {scraped}"));
    assert!(values.len() >= 5, "a scrape every 500 ms: {scraped}");
    let last = values.last().unwrap();
    let (at, requests) = (
        last[0].as_f64().unwrap(),
        last[1].as_str().unwrap().parse::<u64>().unwrap(),
    );
    let q = "histogram_quantile(0.99, sum by (le) (blast_run_request_duration_seconds_bucket))";
    let answer = query(port, q, Some(at));
    let prometheus_p99: f64 = answer["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .parse()
        .unwrap();

    // blast's p99 over the same requests: the metrics change once per interval, so the
    // scrape saw the run's first k intervals, which the record keeps exactly.
    let run = RunRecord::from_json(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let exact = run.exact.unwrap();
    let mut merged = blast_engine::new_histogram();
    let mut seen = 0;
    for interval in &exact.intervals {
        if seen == requests {
            break;
        }
        let stats = interval.names[0].decode().unwrap();
        seen += stats.counters.requests();
        merged.add(&stats.latency_us).unwrap();
    }
    assert_eq!(seen, requests, "a scrape sees whole intervals");
    let blast_p99 = merged.value_at_quantile(0.99) as f64 / 1e6;
    eprintln!(
        "{requests} requests scraped: p99 {:.3} ms by Prometheus, {:.3} ms by blast",
        prometheus_p99 * 1e3,
        blast_p99 * 1e3
    );
    assert!(
        (prometheus_p99 / blast_p99 - 1.0).abs() <= 0.01,
        "Prometheus p99 {prometheus_p99} s against blast's {blast_p99} s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
