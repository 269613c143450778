//! `blast --web` driven through Locust's HTTP API, as scripts and dashboards drive Locust's:
//! swarm, retarget, reset, stop, the CSV endpoints, runs one after another, who may connect,
//! and what the UI refuses (foreign hosts and origins, GETs that change state, big bodies,
//! loads the host cannot hold) while the run stays controllable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `blast --web` process on a free loopback port; killed when dropped.
struct WebUi {
    child: Child,
    addr: SocketAddr,
    /// What blast printed on stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl WebUi {
    fn start(args: &[&str]) -> WebUi {
        WebUi::spawn(Command::new(env!("CARGO_BIN_EXE_blast")), args)
    }

    /// `blast --web ARGS` as `command` runs it (a shell that lowers a limit first, say).
    fn spawn(mut command: Command, args: &[&str]) -> WebUi {
        let mut child = command
            .args(["--web", "--web-port", "0", "--no-pin"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep reading: blast prints each run's summary, and a closed pipe would end it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, log) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        WebUi {
            child,
            addr,
            stderr,
        }
    }

    /// One request; returns the status and the body.
    fn call(&self, method: &str, path: &str, form: &str, auth: Option<&str>) -> (u16, String) {
        let auth = auth.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
        self.call_with(method, path, form, &auth)
    }

    /// One request with `headers` (whole lines) beside the usual ones.
    fn call_with(&self, method: &str, path: &str, form: &str, headers: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n{headers}content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
            self.addr,
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
        self.post("/swarm", form)
    }

    /// A POST that must succeed, as a script sends it (no Origin); its JSON answer.
    fn post(&self, path: &str, form: &str) -> serde_json::Value {
        let (status, body) = self.call("POST", path, form, None);
        assert_eq!(status, 200, "{path}: {body}");
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
    assert_eq!(ui.post("/stats/reset", "")["success"], true);
    let after = ui.until("a new interval", |s| s["user_count"] == 5);
    assert!(total_requests(&after) < before, "{before} -> {after}");

    assert_eq!(ui.post("/stop", "")["success"], true);
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
    // /metrics, for Prometheus: its counters add the runs up.
    let second_record: serde_json::Value =
        serde_json::from_str(&ui.get("/blast/record.json")).unwrap();
    let metrics = ui.get("/metrics");
    let counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("blast_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        counted,
        record["requests"].as_u64().unwrap() + second_record["requests"].as_u64().unwrap(),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"));
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
    for path in ["/", "/stats/requests", "/stats/requests/csv"] {
        let (status, _) = ui.call("GET", path, "", None);
        assert_eq!(status, 401, "{path}");
    }
    for path in ["/swarm", "/stop"] {
        let (status, _) = ui.call("POST", path, "user_count=1", None);
        assert_eq!(status, 401, "{path}");
    }
    let wrong = Some("Basic YWxpY2U6bm9wZQ==");
    assert_eq!(ui.call("GET", "/", "", wrong).0, 401);
    assert_eq!(ui.call("GET", "/", "", Some("Basic x")).0, 401);
    // base64("alice:s3cret")
    let right = Some("Basic YWxpY2U6czNjcmV0");
    assert_eq!(ui.call("GET", "/stats/requests", "", right).0, 200);
    // Wrong credentials are counted in the log; a request without any is not an attempt.
    let log = until_logged(&ui, "2 failed attempts");
    assert!(log.contains("wrong credentials from 127.0.0.1:"), "{log}");
    assert!(!log.contains("3 failed"), "{log}");
    assert!(!log.contains("s3cret"), "{log}");
}

/// Waits until blast's stderr contains `text`; returns all of it.
fn until_logged(ui: &WebUi, text: &str) -> String {
    let start = Instant::now();
    loop {
        let log = ui.stderr.lock().unwrap().clone();
        if log.contains(text) {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {text:?} in {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs curl: .ci/run installs it and runs the ignored tests"]
fn a_foreign_host_name_gets_403() {
    let ui = WebUi::start(&["--web-allowed-host", "blast.example"]);
    let curl = |host: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Host: {host}"))
            .arg(format!("http://{}/stats/requests", ui.addr))
            .output()
            .expect("curl runs (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A DNS-rebinding page reaches the UI under its own name.
    assert_eq!(curl("evil.example"), "403");
    assert_eq!(curl("evil.example:8089"), "403");
    assert_eq!(curl("10.1.2.3"), "403");
    let port = ui.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LOCALHOST".to_string(),
        "blast.example".to_string(),
    ] {
        assert_eq!(curl(&host), "200", "{host}");
    }
}

#[test]
fn state_changes_need_a_post_from_the_uis_own_origin() {
    let ui = WebUi::start(&[]);
    // An <img src=/stop> or a link cannot change anything.
    for path in ["/swarm", "/stop", "/stats/reset"] {
        let (status, body) = ui.call("GET", path, "", None);
        assert_eq!(status, 405, "{path}: {body}");
    }
    let own = format!("http://{}", ui.addr);
    for header in [
        "origin: http://evil.example\r\n".to_string(),
        "origin: null\r\n".to_string(),
        format!("origin: http://127.0.0.1:{}\r\n", ui.addr.port() + 1),
        "referer: http://evil.example/page.html\r\n".to_string(),
    ] {
        let (status, body) = ui.call_with("POST", "/swarm", "user_count=1", &header);
        assert_eq!(status, 403, "{header}: {body}");
    }
    assert_eq!(
        ui.json("/blast/state")["runs"],
        0,
        "a refused request started a run"
    );
    // The UI's own page, and scripts that send neither header, are served.
    let (status, body) = ui.call_with(
        "POST",
        "/swarm",
        "user_count=1&run_time=30s",
        &format!("origin: {own}\r\nreferer: {own}/\r\n"),
    );
    assert_eq!(status, 200, "{body}");
    ui.until("running", |s| s["state"] == "running");
    let (status, _) = ui.call_with("POST", "/stop", "", "origin: http://evil.example\r\n");
    assert_eq!(status, 403);
    assert_eq!(ui.json("/stats/requests")["state"], "running");
    assert_eq!(ui.post("/stop", "")["success"], true);
    ui.until("stopped", |s| s["state"] == "stopped");
    // Nothing runs now: /stop says so.
    assert_eq!(ui.post("/stop", "")["success"], false);
}

#[test]
fn bodies_over_64_kib_get_413_unread() {
    let ui = WebUi::start(&[]);
    // Only the headers are sent: the answer comes without the body being waited for.
    for length in [64 * 1024 + 1, 100 << 20] {
        let mut s = TcpStream::connect(ui.addr).unwrap();
        write!(
            s,
            "POST /swarm HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {length}\r\n\r\n",
            ui.addr
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{length}: {answer}");
    }
    let (status, body) = ui.call("POST", "/swarm", &"x".repeat(64 * 1024), None);
    assert_eq!(status, 400, "a body at the limit is read: {body}");
    assert_eq!(ui.json("/blast/state")["runs"], 0);
}

/// `blast --web` under `ulimit -n LIMIT` (soft and hard).
fn limited(limit: u32, args: &[&str]) -> WebUi {
    let mut sh = Command::new("sh");
    sh.args([
        "-c",
        &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
        env!("CARGO_BIN_EXE_blast"),
    ]);
    WebUi::spawn(sh, args)
}

#[test]
fn loads_beyond_the_hosts_ceiling_are_refused_and_the_run_goes_on() {
    // 512 descriptors: at most (512 - 64) / 2 = 224 users against the built-in target.
    let ui = limited(512, &[]);
    // Beyond this machine's memory, then beyond its descriptors.
    for (users, why) in [(100_000_000, "MiB available"), (1000, "open files")] {
        let (status, body) = ui.call("POST", "/swarm", &format!("user_count={users}"), None);
        assert_eq!(status, 400, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["success"], false, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(why),
            "{answer}"
        );
    }
    let (status, body) = ui.call("POST", "/swarm", "user_count=2&spawn_rate=1e12", None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(ui.json("/blast/state")["runs"], 0);

    assert_eq!(ui.swarm("user_count=2&run_time=60s")["success"], true);
    ui.until("two users", |s| {
        s["user_count"] == 2 && total_requests(s) > 0
    });
    let (status, body) = ui.call("POST", "/swarm", "user_count=1000000", None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("the run goes on with 2 users"), "{body}");
    // The run is as it was: still two users, still counting.
    let before = total_requests(&ui.json("/stats/requests"));
    let after = ui.until("more requests", |s| total_requests(s) > before);
    assert_eq!(after["user_count"], 2, "{after}");
    assert_eq!(ui.post("/stop", "")["success"], true);
    ui.until("stopped", |s| s["state"] == "stopped");
}

/// Starts a run, retargets it to the most users the host allows (so spawning takes many control
/// ticks), and returns once the retarget was accepted.
fn big_retarget(ui: &WebUi) {
    assert_eq!(ui.swarm("user_count=2&run_time=120s")["success"], true);
    ui.until("running", |s| s["state"] == "running");
    assert_eq!(ui.swarm("user_count=220")["success"], true);
}

#[test]
fn a_big_retarget_still_stops_on_stop_with_results_written() {
    let ui = limited(512, &[]);
    big_retarget(&ui);
    assert_eq!(ui.post("/stop", "")["success"], true);
    ui.until("stopped", |s| s["state"] == "stopped");
    let record: serde_json::Value = serde_json::from_str(&ui.get("/blast/record.json")).unwrap();
    assert!(record["requests"].as_u64().unwrap() > 0, "{record}");
}

#[test]
fn a_big_retarget_ends_on_the_first_ctrl_c_with_results_written() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let mut ui = limited(512, &["--json", json.to_str().unwrap()]);
    big_retarget(&ui);
    let status = Command::new("kill")
        .args(["-INT", &ui.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let code = loop {
        if let Some(code) = ui.child.try_wait().unwrap() {
            break code;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "blast did not quit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(record["requests"].as_u64().unwrap() > 0, "{record}");
    assert_eq!(record["interrupted"], true, "{record}");
}

#[test]
fn the_accept_loop_survives_running_out_of_file_descriptors() {
    let ui = limited(48, &[]);
    // Hold connections until blast has no descriptor left to accept another.
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(TcpStream::connect(ui.addr).unwrap());
    }
    // One more request waits in the backlog; once the held ones close, it is served.
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = ui.addr;
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /stats/requests HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    // Out of descriptors, the accept loop backs off instead of spinning: over a second it
    // uses a small part of a second of CPU (a spinning loop uses all it gets).
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", ui.child.id())).unwrap();
        let fields: Vec<u64> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().unwrap())
            .collect();
        fields[0] + fields[1]
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(1));
    let ticks = cpu() - before;
    assert!(
        ticks < 50,
        "{ticks} CPU ticks (1/100 s) in one second out of descriptors"
    );
    drop(held);
    let text = rx.recv_timeout(Duration::from_secs(60)).expect("no answer");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(ui.json("/stats/requests")["state"], "ready");
}

#[test]
#[ignore = "needs Chromium and Playwright: .ci/run installs them and runs the ignored tests"]
fn the_page_drives_a_run_in_a_real_browser() {
    let has = |check: &str| {
        Command::new("python3")
            .args(["-c", check])
            .status()
            .is_ok_and(|s| s.success())
    };
    let chromium = std::path::Path::new("/usr/bin/chromium").exists();
    assert!(
        chromium && has("import playwright.sync_api"),
        "Chromium (/usr/bin/chromium) or Playwright for Python is not installed (.ci/run installs both)"
    );
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
