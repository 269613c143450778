//! Faults around a run of the `blast` binary: signals, a target that restarts, file limits and
//! outputs that cannot be written. Every load goes to 127.0.0.1 and every run is bounded.

use blast_target::{Config, Latency, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn blast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_blast"))
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("blast-faults-{}-{name}", std::process::id()))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child, killing it if it outlives `limit` (a hang guard, not a measurement).
fn wait(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("blast did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Asserts blast's exit code, showing its stderr when it differs.
fn assert_exit(out: &Output, code: i32) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
}

/// Starts blast on `args` with a JSON record and waits until it has sent traffic.
fn start(args: &[&str], record: &Path, server: &Server) -> Child {
    let child = blast()
        .args(args)
        .args([
            "--no-pin",
            "--only-summary",
            "--json",
            record.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.served() == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "no traffic");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn ctrl_c_stops_lets_in_flight_requests_finish_and_writes_everything() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let record = temp("sigint.json");
    let csv = temp("sigint");
    let url = format!("{}/", server.url());
    let child = start(
        &[&url, "-u", "4", "-t", "60s", "--csv", csv.to_str().unwrap()],
        &record,
        &server,
    );
    signal(&child, "INT");
    let out = wait(child, Duration::from_secs(30));
    assert_exit(&out, 0);
    let v = json(&record);
    assert_eq!(v["interrupted"], true);
    assert_eq!(
        v["cancelled"], 0,
        "the stop timeout let in-flight requests finish"
    );
    let requests = v["requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(
        server.served(),
        requests,
        "every request the target saw is counted once"
    );
    let stats = std::fs::read_to_string(format!("{}_stats.csv", csv.display())).unwrap();
    assert!(
        stats.contains(&format!(",Aggregated,{requests},")),
        "{stats}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped early"));
    for f in ["stats", "stats_history", "failures", "exceptions"] {
        std::fs::remove_file(format!("{}_{f}.csv", csv.display())).unwrap();
    }
    std::fs::remove_file(record).unwrap();
}

#[test]
fn a_second_ctrl_c_cancels_in_flight_requests_and_still_writes_results() {
    // Every response takes 30 s: after the first Ctrl-C all four requests are in flight.
    let config = Config {
        latency: Latency::Fixed(Duration::from_secs(30)),
        ..Config::default()
    };
    let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let record = temp("abort.json");
    let url = format!("{}/", server.url());
    let child = start(
        &[&url, "-u", "4", "-t", "60s", "--stop-timeout", "60s"],
        &record,
        &server,
    );
    let start = Instant::now();
    while server.served() < 4 {
        assert!(start.elapsed() < Duration::from_secs(20), "no traffic");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let out = wait(child, Duration::from_secs(20));
    assert_exit(&out, 130);
    let v = json(&record);
    assert_eq!(
        (v["requests"].as_u64(), v["cancelled"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(v["interrupted"], true);
    std::fs::remove_file(record).unwrap();
}

#[test]
fn sigterm_stops_like_ctrl_c() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let record = temp("sigterm.json");
    let url = format!("{}/", server.url());
    let child = start(&[&url, "-u", "2", "-t", "60s"], &record, &server);
    signal(&child, "TERM");
    let out = wait(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&record)["interrupted"], true);
    std::fs::remove_file(record).unwrap();
}

#[test]
fn a_target_that_dies_and_comes_back_is_survived_and_counted() {
    // This test holds the port the whole time (a bound socket that does not listen refuses
    // connections), so the target comes back on a port nobody else could take meanwhile.
    let hold = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    hold.set_reuse_port(true).unwrap();
    hold.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = hold.local_addr().unwrap().as_socket().unwrap();
    let config = || Config {
        reuse_port: true,
        ..Config::default()
    };
    let server = Server::start(addr, config()).unwrap();
    let record = temp("restart.json");
    let url = format!("{}/", server.url());
    let child = start(&[&url, "-u", "4", "-t", "4s"], &record, &server);
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    std::thread::sleep(Duration::from_millis(800));
    let again = Server::start(addr, config()).unwrap();
    let out = wait(child, Duration::from_secs(30));
    // Failed requests without criteria exit 1, as Locust does; the results are all there.
    assert_exit(&out, 1);
    let v = json(&record);
    assert!(
        again.served() > 0,
        "blast reconnected to the restarted target"
    );
    assert!(
        v["failures_by_class"]["connect"].as_u64().unwrap() > 0,
        "{v}"
    );
    let refused = v["failure_rows"].as_array().unwrap().iter().find(|r| {
        r["error"]
            .as_str()
            .unwrap()
            .contains("ConnectionRefusedError")
    });
    assert!(refused.is_some(), "{v}");
    std::fs::remove_file(record).unwrap();
}

#[test]
fn too_few_file_descriptors_is_a_clear_error_up_front() {
    let record = temp("fds.json");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -n 200 && exec {} -u 1000 -t 1s --json {}",
                env!("CARGO_BIN_EXE_blast"),
                record.display()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open files") && err.contains("ulimit"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!record.exists(), "nothing half-written");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_output_that_cannot_be_written_fails_before_the_run() {
    // A path under a regular file can never be created, even by root.
    for flag in ["--json", "--csv", "--html", "--hdr-log"] {
        let out = blast()
            .args(["-u", "1", "-t", "1s", flag, "/etc/hostname/blast/out"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot"), "{flag}: {err}");
        assert!(out.stdout.is_empty(), "{flag}: no run happened");
    }
}

#[test]
fn a_full_disk_at_the_end_still_prints_the_results_and_fails_clearly() {
    // /dev/full opens fine and refuses every write with "No space left on device".
    let out = blast()
        .args(["-u", "1", "-t", "1s", "--no-pin", "--json", "/dev/full"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("requests"),
        "the summary is printed first: {text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/full") && err.contains("No space left"),
        "{err}"
    );
}

#[test]
fn a_stopped_generator_is_marked_stalled_and_its_gap_shows_in_the_history() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let record = temp("sigstop.json");
    let csv = temp("sigstop");
    let url = format!("{}/", server.url());
    let child = start(
        &[
            &url,
            "--rate",
            "200",
            "-t",
            "5s",
            "--csv",
            csv.to_str().unwrap(),
        ],
        &record,
        &server,
    );
    // blast itself is stopped for 1.5 s, as a VM pause or a swapped-out process would be.
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "STOP");
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "CONT");
    let out = wait(child, Duration::from_secs(30));
    assert_exit(&out, 0);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("generator stalled at"), "{summary}");
    let v = json(&record);
    let g = &v["generator"];
    assert_eq!(g["stalled"], true, "{g}");
    assert!(g["stall_ms"].as_f64().unwrap() >= 1000.0, "{g}");
    // The pause is charged to the interval in which the loop resumed.
    assert!(!g["stall_windows"].as_array().unwrap().is_empty(), "{g}");
    // Elapsed time comes from the clock: one interval of the history spans the pause.
    let history = std::fs::read_to_string(format!("{}_blast_history.csv", csv.display())).unwrap();
    let elapsed: Vec<f64> = history
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let widest = elapsed.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(widest >= 1.4, "{elapsed:?}");
    let stalled_rows = history
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(10) == Some("1"))
        .count();
    assert!(stalled_rows >= 1, "{history}");
    for suffix in [
        "stats",
        "stats_history",
        "failures",
        "exceptions",
        "blast_history",
    ] {
        std::fs::remove_file(format!("{}_{suffix}.csv", csv.display())).unwrap();
    }
    std::fs::remove_file(record).unwrap();
}

/// A server that answers every request with bytes that are not HTTP.
fn garbage_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {
                    if stream.write_all(b"garbage, not HTTP\r\n\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn failed_requests_without_criteria_exit_1_unless_told_otherwise() {
    let addr = garbage_server();
    let url = format!("http://{addr}/");
    let run = |extra: &[&str]| {
        blast()
            .args([&url, "-u", "2", "-t", "1s", "--no-pin", "--only-summary"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("protocol"));
    assert_exit(&run(&["--exit-code-on-error", "0"]), 0);
    assert_exit(&run(&["--exit-code-on-error", "7"]), 7);
    // Criteria decide when there are any.
    assert_exit(&run(&["--threshold", "failure_rate<=100%"]), 0);
    assert_exit(&run(&["--threshold", "success>=99%"]), 3);
}
