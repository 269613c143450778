//! `blast --web` driven through Locust's HTTP API, as scripts and dashboards drive Locust's:
//! swarm, retarget, reset, stop, the CSV endpoints, runs one after another, and who may connect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `blast --web` process on a free loopback port; killed when dropped.
struct WebUi {
    child: Child,
    addr: SocketAddr,
}

impl WebUi {
    fn start(args: &[&str]) -> WebUi {
        let mut child = Command::new(env!("CARGO_BIN_EXE_blast"))
            .args(["--web", "--web-port", "0", "--no-pin"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep reading: blast prints each run's summary, and a closed pipe would end it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        WebUi { child, addr }
    }

    /// One request; returns the status and the body.
    fn call(&self, method: &str, path: &str, form: &str, auth: Option<&str>) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        let auth = auth.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
            form.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    fn get(&self, path: &str) -> String {
        let (status, body) = self.call("GET", path, "", None);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(path)).unwrap()
    }

    fn swarm(&self, form: &str) -> serde_json::Value {
        let (status, body) = self.call("POST", "/swarm", form, None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls `/stats/requests` until `done` holds (a hang guard, not a measurement).
    fn until(&self, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let stats = self.json("/stats/requests");
            if done(&stats) {
                return stats;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{what}: {stats}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for WebUi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn total_requests(stats: &serde_json::Value) -> u64 {
    let rows = stats["stats"].as_array().unwrap();
    rows.last()
        .map_or(0, |r| r["num_requests"].as_u64().unwrap())
}

#[test]
fn swarm_retarget_reset_stop_and_the_csv_endpoints_work_like_locusts() {
    let prefix = std::env::temp_dir().join(format!("blast-web-{}", std::process::id()));
    let prefix_text = prefix.to_str().unwrap();
    let ui = WebUi::start(&["--csv", prefix_text]);
    assert!(ui.addr.ip().is_loopback(), "{}", ui.addr);
    assert!(ui.get("/").contains("<canvas"));
    let idle = ui.json("/stats/requests");
    assert_eq!(idle["state"], "ready");

    let started = ui.swarm("user_count=2&spawn_rate=100&run_time=60s");
    assert_eq!(started["success"], true, "{started}");
    let stats = ui.until("two users running", |s| {
        s["user_count"] == 2 && total_requests(s) > 100
    });
    for key in [
        "total_rps",
        "total_fail_per_sec",
        "fail_ratio",
        "current_response_time_percentiles",
        "user_count",
        "state",
        "errors",
    ] {
        assert!(stats.get(key).is_some(), "{key} missing from {stats}");
    }
    let aggregated = stats["stats"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(aggregated["name"], "Aggregated");
    for key in [
        "method",
        "num_requests",
        "num_failures",
        "min_response_time",
        "max_response_time",
        "current_rps",
        "current_fail_per_sec",
        "avg_response_time",
        "median_response_time",
        "response_time_percentile_0.95",
        "response_time_percentile_0.99",
        "avg_content_length",
    ] {
        assert!(
            aggregated.get(key).is_some(),
            "{key} missing from {aggregated}"
        );
    }

    // Re-posting while running retargets the user count.
    let retarget = ui.swarm("user_count=5");
    assert_eq!(retarget["success"], true, "{retarget}");
    ui.until("five users", |s| s["user_count"] == 5);

    // A reset starts the counts again from zero.
    let before = total_requests(&ui.until("traffic", |s| total_requests(s) > 1000));
    assert_eq!(ui.json("/stats/reset")["success"], true);
    let after = ui.until("a new interval", |s| s["user_count"] == 5);
    assert!(total_requests(&after) < before, "{before} -> {after}");

    assert_eq!(ui.json("/stop")["success"], true);
    ui.until("stopped", |s| s["state"] == "stopped");
    let state = ui.json("/blast/state");
    assert_eq!(state["outcome"]["failures"], 0, "{state}");

    // The CSV endpoints serve the files the run wrote, byte for byte.
    for (endpoint, suffix) in [
        ("/stats/requests/csv", "stats"),
        ("/stats/failures/csv", "failures"),
        ("/exceptions/csv", "exceptions"),
        ("/stats/requests_full_history/csv", "stats_history"),
    ] {
        let served = ui.get(endpoint);
        let file = std::fs::read_to_string(format!("{prefix_text}_{suffix}.csv")).unwrap();
        assert_eq!(served, file, "{endpoint}");
    }
    assert!(ui
        .get("/stats/requests/csv")
        .starts_with("Type,Name,Request Count,"));
    let record: serde_json::Value = serde_json::from_str(&ui.get("/blast/record.json")).unwrap();
    assert!(record["requests"].as_u64().unwrap() > 0);

    // A second run starts from fresh stats and writes its own files (PREFIX-2_*).
    ui.swarm("user_count=1&run_time=1s");
    ui.until("the second run", |s| {
        s["state"] == "stopped" && total_requests(s) > 0
    });
    let start = Instant::now();
    while ui.json("/blast/state")["runs"] != 2 || ui.json("/stats/requests")["state"] != "stopped" {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = PathBuf::from(format!("{prefix_text}-2_stats.csv"));
    assert!(second.exists(), "{}", second.display());
    assert_eq!(
        ui.get("/stats/requests/csv"),
        std::fs::read_to_string(&second).unwrap()
    );
    for run in ["", "-2"] {
        for suffix in [
            "stats",
            "stats_history",
            "failures",
            "exceptions",
            "blast_history",
        ] {
            let _ = std::fs::remove_file(format!("{prefix_text}{run}_{suffix}.csv"));
        }
    }
}

#[test]
fn a_non_loopback_bind_needs_credentials() {
    let out = Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(["--web", "--web-host", "0.0.0.0", "--web-port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--web-auth"), "{err}");
}

#[test]
fn credentials_are_asked_for_on_every_route() {
    let ui = WebUi::start(&["--web-auth", "alice:s3cret"]);
    for path in ["/", "/stats/requests", "/stop", "/stats/requests/csv"] {
        let (status, _) = ui.call("GET", path, "", None);
        assert_eq!(status, 401, "{path}");
    }
    let (status, _) = ui.call("POST", "/swarm", "user_count=1", None);
    assert_eq!(status, 401);
    let wrong = Some("Basic YWxpY2U6bm9wZQ==");
    assert_eq!(ui.call("GET", "/", "", wrong).0, 401);
    // base64("alice:s3cret")
    let right = Some("Basic YWxpY2U6czNjcmV0");
    assert_eq!(ui.call("GET", "/stats/requests", "", right).0, 200);
}

#[test]
fn the_page_drives_a_run_in_a_real_browser() {
    let has = |check: &str| {
        Command::new("python3")
            .args(["-c", check])
            .status()
            .is_ok_and(|s| s.success())
    };
    let chromium = std::path::Path::new("/usr/bin/chromium").exists();
    if !chromium || !has("import playwright.sync_api") {
        let what = "Chromium (/usr/bin/chromium) or Playwright for Python is not installed (.ci/run installs both)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{what}, and CI=true");
        }
        eprintln!("SKIPPED: {what}");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web_browser.py");
    let out = Command::new("python3")
        .args([script, env!("CARGO_BIN_EXE_blast")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
