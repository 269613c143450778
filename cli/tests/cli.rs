//! Drives the built `blast` binary against the reference target on a loopback port.

use blast_target::{Config, Server};

/// The reference target as blast serves it, with the P4.3 pack's EUCORA API.
fn eucora() -> Config {
    blast_p43::Eucora::serve_in(Config::default()).0
}
use std::path::PathBuf;
use std::process::{Command, Output};

fn blast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(args)
        .output()
        .expect("blast runs")
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("blast-cli-{}-{name}", std::process::id()))
}

/// Runs blast with `--no-pin --json FILE` added; returns its stdout and the parsed JSON.
fn blast_json(args: &[&str], name: &str) -> (String, serde_json::Value) {
    let json = temp(name);
    let mut all = args.to_vec();
    all.extend(["--no-pin", "--json", json.to_str().unwrap()]);
    let out = blast(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    let value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(json).unwrap();
    (String::from_utf8(out.stdout).unwrap(), value)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn wrk_style_run_prints_a_summary_and_writes_json() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), eucora()).unwrap();
    let url = format!("{}/", server.url());
    let (text, v) = blast_json(&[&url, "-u", "4", "-t", "1s"], "summary.json");
    for line in ["requests", "latency", "p99.99", "connections   "] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    for key in ["requests", "failures", "duration_s", "rps", "cancelled"] {
        assert!(v[key].is_number(), "{key} missing from {v}");
    }
    for key in ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"] {
        assert!(
            v["latency_ms"][key].is_number(),
            "latency_ms.{key} missing from {v}"
        );
    }
    let requests = v["requests"].as_u64().unwrap();
    let cancelled = v["cancelled"].as_u64().unwrap();
    assert!(requests > 0);
    let served = server.served();
    assert!(
        (requests..=requests + cancelled).contains(&served),
        "{served} vs {v}"
    );
}

#[test]
fn rate_run_reports_target_achieved_and_late_sends() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), eucora()).unwrap();
    let (text, v) = blast_json(&[&server.url(), "--rate", "200", "-t", "1s"], "rate.json");
    assert!(text.contains("target 200.0/s"), "{text}");
    assert_eq!(v["target_rate"], 200.0);
    // The timetable owes 200 slots in 1 s; each was sent (and answered, or cut off at the
    // stop) or missed, and the target saw every one that was sent.
    let n = |key: &str| v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"));
    assert_eq!(n("scheduled_slots"), 200, "{v}");
    assert_eq!(n("requests") + n("cancelled") + n("missed"), 200, "{v}");
    let served = server.served();
    assert!(
        (n("requests")..=n("requests") + n("cancelled")).contains(&served),
        "{served}: {v}"
    );
    assert!(n("late_sends") <= n("requests") + n("cancelled"), "{v}");
    // Latency runs from the intended start, service time from the send: never less.
    let ms = |kind: &str, key: &str| v[kind][key].as_f64().unwrap();
    for key in ["p50", "p99", "max"] {
        assert!(
            ms("latency_ms", key) >= ms("service_time_ms", key),
            "{key}: {v}"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let bad_file = temp("bad.toml");
    std::fs::write(
        &bad_file,
        "[[user]]\nclass = \"U\"\n[[user.task]]\nrequest = \"GET /{{x}}\"\n",
    )
    .unwrap();
    let bad_file = bad_file.to_str().unwrap();
    let out = blast(&["-f", bad_file]);
    assert!(
        stderr(&out).contains("bad.toml:4:11: unknown variable {{x}}"),
        "{}",
        stderr(&out)
    );
    let cases: [&[&str]; 46] = [
        &["--start-at", "tomorrow"],
        &["http://127.0.0.1:1/", "--streams", "0"],
        &["http://127.0.0.1:1/", "--streams", "4"],
        &["http://127.0.0.1:1/", "--http1", "--http2"],
        &["https://127.0.0.1:1/", "--http1", "--streams", "4"],
        &["--shard", "0/3"],
        &["--shard", "4/3"],
        &["--shard", "two"],
        &["--profile", "nope"],
        &["-f", bad_file],
        &["-f", "/no/such/file.toml"],
        &["--profile", "cab", "http://127.0.0.1:1/"],
        &["--profile", "cab", "--host", "http://127.0.0.1:1/api"],
        &["--profile", "cab", "-H", "no colon"],
        &["--profile", "cab", "--threshold", "p99<soon"],
        &["--profile", "cab", "--threshold", "/nope:p99<1s"],
        &["--profile", "burst", "--peak", "0"],
        &["--stages", "1m:x"],
        &["--peak", "10"],
        &["not a url"],
        &["ftp://127.0.0.1/"],
        &["http://127.0.0.1:0/"],
        &["http://127.0.0.1:99999/"],
        &["http://127.0.0.1:abc/"],
        &["http://127.0.0.1:-1/"],
        &["gopher://127.0.0.1:70/"],
        &["https://127.0.0.1:1/", "--ca-cert", "/no/such/ca.pem"],
        &["http://127.0.0.1:1/", "--cert", "/no/such/cert.pem"],
        &["http://127.0.0.1:1/", "-u", "0"],
        &["http://127.0.0.1:1/", "-t", "ten"],
        &["http://127.0.0.1:1/", "--rate", "-5"],
        &["http://127.0.0.1:1/", "--client", "curl"],
        &["http://127.0.0.1:1/", "--threads", "100000"],
        &["http://127.0.0.1:1/", "-H", "no colon"],
        &["http://127.0.0.1:1/", "--frobnicate"],
        &["--stages", "1s:2", "-u", "3"],
        &["http://127.0.0.1:1/", "--tags", "read"],
        &["--profile", "cab", "--tags", "no-such-tag"],
        &["http://127.0.0.1:1/", "--rate", "10", "-u", "3"],
        // Negative numbers get the range message, not clap's "unexpected argument".
        &["http://127.0.0.1:1/", "--rate", "-10"],
        &["http://127.0.0.1:1/", "-r", "-5"],
        &["http://127.0.0.1:1/", "-u", "-3"],
        &["http://127.0.0.1:1/", "--threads", "-1"],
        &["http://127.0.0.1:1/", "-t", "-5s"],
        &["--profile", "burst", "--peak", "-5"],
        &["http://127.0.0.1:1/", "--metrics-addr", "nowhere"],
    ];
    std::fs::remove_file(bad_file).unwrap();
    for args in cases {
        let out = blast(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("blast: error:"), "{args:?}: {err}");
        let negative = args
            .iter()
            .any(|a| a.len() > 1 && a.as_bytes()[0] == b'-' && a.as_bytes()[1].is_ascii_digit());
        assert!(
            !(negative && err.contains("unexpected argument")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("<COMMAND>"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_refusing_target_is_reported_at_once() {
    // Bound but not listening: connections are refused, and no other test can take the port.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let out = blast(&[&format!("http://{addr}/"), "-t", "1h"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot connect") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn https_targets_are_verified_against_the_given_ca() {
    let identity = blast_target::TlsIdentity::self_signed();
    let config = Config {
        tls: Some(identity.clone()),
        ..eucora()
    };
    let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let url = format!("{}/", server.url());
    let ca = temp("ca.pem");
    std::fs::write(&ca, &identity.cert_pem).unwrap();
    let ca = ca.to_str().unwrap();

    let (text, v) = blast_json(&[&url, "-u", "2", "-t", "1s", "--ca-cert", ca], "tls.json");
    assert!(text.contains("  tls           "), "{text}");
    assert_eq!(v["failures"], 0);
    assert_eq!(v["connection"]["tls_handshakes"], 2);
    assert!(v["connection"]["tls_handshake_ms_mean"].as_f64().unwrap() > 0.0);

    // Without the CA, the self-signed certificate is refused in one line, before any load.
    let out = blast(&[&url, "-u", "2", "-t", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("not trusted") && err.contains("--ca-cert"),
        "{err}"
    );

    let out = blast(&[&url, "-u", "2", "-t", "1s", "--insecure", "--no-pin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: --insecure"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(ca).unwrap();
}

#[test]
fn without_a_url_blast_runs_against_its_reference_target() {
    let out = blast(&["-u", "2", "-t", "1s", "--no-pin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("built-in reference target"),
        "{text}"
    );
}

#[test]
fn a_profile_runs_against_the_reference_target_and_passes_its_criteria() {
    let (text, v) = blast_json(
        &["--profile", "cab", "-u", "10", "-r", "100", "-t", "2s"],
        "cab.json",
    );
    assert!(text.starts_with("no --host given"), "{text}");
    assert!(
        text.contains("PASS  /api/v1/cab/[id]/approve/:status409==0"),
        "{text}"
    );
    assert!(text.contains("result: PASS"), "{text}");
    assert_eq!(v["passed"], true);
    assert_eq!(v["criteria"].as_array().unwrap().len(), 9);
    let names: Vec<&str> = v["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"/api/v1/cab/pending/"), "{names:?}");
}

#[test]
fn a_failed_criterion_exits_with_code_3_after_writing_results() {
    let json = temp("fail.json");
    let out = blast(&[
        "-u",
        "2",
        "-t",
        "1s",
        "--no-pin",
        "--threshold",
        "p99<1us",
        "--threshold",
        "requests>0",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAIL  p99<1us"), "{text}");
    assert!(text.contains("PASS  requests>0"), "{text}");
    assert!(
        text.contains("result: FAIL (1 of 2 criteria failed)"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["passed"], false);
    std::fs::remove_file(json).unwrap();
}

#[test]
fn a_printed_profile_is_a_scenario_file_that_runs_as_is() {
    let out = blast(&["--print-profile", "deployments"]);
    assert!(out.status.success());
    let file = temp("deployments.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    let (text, v) = blast_json(
        &[
            "-f",
            file.to_str().unwrap(),
            "-u",
            "5",
            "-r",
            "50",
            "-t",
            "1s",
        ],
        "file.json",
    );
    assert!(text.contains("blast deployments"), "{text}");
    assert!(v["requests"].as_u64().unwrap() >= 5, "{v}");
    std::fs::remove_file(file).unwrap();
    let list = blast(&["--list-profiles"]);
    let list = String::from_utf8(list.stdout).unwrap();
    for name in ["deployments", "cab", "connectors", "burst"] {
        assert!(list.contains(name), "{list}");
    }
}

#[test]
fn scenario_flags_behave_as_locust_users_expect() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), eucora()).unwrap();
    let file = temp("headers.toml");
    // The -H cookie is read back by the target and feeds the next step: /status/207.
    std::fs::write(
        &file,
        "[[user]]\nclass = \"U\"\nwait_time = \"constant(0.1)\"\n[[user.task]]\n[[user.task.step]]\nrequest = \"GET /cookies\"\ncapture = { n = \"cookies.n\" }\n[[user.task.step]]\nrequest = \"GET /status/20{{n}}\"\nname = \"/status/20[n]\"\n",
    )
    .unwrap();
    let (_, v) = blast_json(
        &[
            "-f",
            file.to_str().unwrap(),
            "--host",
            &server.url(),
            "-H",
            "Cookie: n=7",
            "-u",
            "2",
            "-t",
            "1s",
            "-L",
            "WARNING",
        ],
        "headers.json",
    );
    std::fs::remove_file(file).unwrap();
    let names = v["names"].as_array().unwrap();
    let second = names.iter().find(|n| n["name"] == "/status/20[n]").unwrap();
    assert!(second["requests"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["failures"], 0, "{v}");

    // --stages brings its own length, over the profile's 5 minutes.
    // (The profile's criteria may fail on a 1 s run: exit 3 is fine here.)
    let json = temp("stages.json");
    let out = blast(&[
        "--profile",
        "cab",
        "--stages",
        "1s:2",
        "--no-pin",
        "-q",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(json).unwrap();
    assert!(
        v["duration_s"].as_f64().unwrap() < 30.0,
        "{}",
        v["duration_s"]
    );

    // -q prints no summary, but a failed criterion still says so.
    let out = blast(&[
        &server.url(),
        "-u",
        "1",
        "-t",
        "1s",
        "-q",
        "--no-pin",
        "--threshold",
        "requests<1",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("FAIL requests<1"), "{}", stderr(&out));
}

#[test]
fn a_wrong_capture_path_is_named_with_the_failures_it_caused() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), eucora()).unwrap();
    let file = temp("badcap.toml");
    // The login answers {"token": ...}; the capture looks for "access" instead, so the
    // requests that need {{token}} go without their Authorization header and get 401s.
    std::fs::write(
        &file,
        r#"[[user]]
class = "U"
wait_time = "constant(0.05)"
headers = { Authorization = "Bearer {{token}}" }
[[user.on_start]]
request = "POST /api/v1/auth/token/"
json = { username = "publisher_user", password = "publisher-pass" }
capture = { token = "access" }
[[user.task]]
request = "GET /api/v1/deployments/"
"#,
    )
    .unwrap();
    let dir = temp("badcap");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("run");
    let out = blast(&[
        "-f",
        file.to_str().unwrap(),
        "--host",
        &server.url(),
        "-u",
        "2",
        "-t",
        "1s",
        "--no-pin",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    std::fs::remove_file(file).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = csv::Reader::from_path(dir.join("run_failures.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    std::fs::remove_dir_all(dir).unwrap();
    // The capture names its variable and path; the 401s name the header, the variable and
    // the step that should have captured it.
    let capture = rows
        .iter()
        .find(|r| &r[1] == "/api/v1/auth/token/")
        .unwrap();
    assert_eq!(
        &capture[2],
        r#"CaptureError("token: nothing at access in the response")"#
    );
    let denied = rows
        .iter()
        .find(|r| &r[1] == "/api/v1/deployments/")
        .unwrap();
    assert_eq!(
        &denied[2],
        "HTTPError(code=401): sent without its Authorization header: {{token}} is not \
         captured yet (POST /api/v1/auth/token/ captures it from access)"
    );
    assert!(denied[3].parse::<u64>().unwrap() > 0);
    // The console's error table says the same (piped: whole, nothing cut).
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        joined.contains("nothing at access in the response"),
        "{text}"
    );
    assert!(
        joined.contains(
            "{{token}} is not captured yet (POST /api/v1/auth/token/ captures it from access)"
        ),
        "{text}"
    );
    assert!(!text.contains('…'), "{text}");
}

#[test]
fn a_shard_runs_its_share_and_says_which_it_is() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), eucora()).unwrap();
    // 10 users over 3 shards: 4, 3 and 3.
    let (text, v) = blast_json(
        &[&server.url(), "-u", "10", "-t", "1s", "--shard", "2/3"],
        "shard.json",
    );
    assert_eq!(v["shard"], "2/3", "{v}");
    // The record keeps the run's shape (10 users); this shard ran 3 of them.
    assert_eq!(v["users"], 10.0, "{v}");
    assert_eq!(v["history"][0]["users"], 3, "{v}");
    assert!(text.contains(", shard 2/3"), "{text}");
}

#[test]
fn start_at_waits_for_its_time_and_says_how_late_it_started() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), eucora()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = format!("{:.3}", now + 1.5);
    let (text, v) = blast_json(
        &[
            &server.url(),
            "-u",
            "1",
            "-t",
            "1s",
            "--start-at",
            &at,
            "--shard",
            "1/1",
        ],
        "start.json",
    );
    // It waited: the run began at or after the time asked, and says by how much.
    let late = v["start_late_ms"].as_f64().unwrap();
    assert!(late >= 0.0, "{v}");
    assert!(v["start_at"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(text.contains("--start-at"), "{text}");
    // Its intervals fall on the grid of the time asked (to the nanosecond), so shards started
    // together line up even when one is a little late.
    let interval_ns = 1_000_000_000u64;
    let at_ns = (at.parse::<f64>().unwrap() * 1000.0).round() as u64 * 1_000_000;
    let first_ns = v["exact"]["started_at_ns"].as_u64().unwrap();
    assert_eq!((first_ns - at_ns) % interval_ns, 0, "{v}");
}

#[test]
fn help_lists_the_subcommands_and_each_has_its_own() {
    for args in [&["help"][..], &["--help"]] {
        let out = blast(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: blast [OPTIONS] [URL]"), "{text}");
        for command in ["convert", "k8s", "merge", "report", "selftest"] {
            assert!(
                text.lines().any(|l| l.trim_start().starts_with(command)),
                "{command} missing from {args:?}:\n{text}"
            );
        }
    }
    for command in ["convert", "k8s", "merge", "report", "selftest"] {
        for args in [&[command, "--help"][..], &["help", command]] {
            let out = blast(args);
            assert_eq!(out.status.code(), Some(0), "{args:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!("Usage: blast {command}")),
                "{args:?}:\n{text}"
            );
        }
    }
}

#[test]
fn a_name_that_does_not_resolve_is_a_run_that_could_not_happen() {
    // `.invalid` never resolves (RFC 2606): exit 1, as for a refused connection.
    let out = blast(&["http://no-such-host.invalid/", "-t", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot resolve no-such-host.invalid"),
        "{}",
        stderr(&out)
    );
    // A name no resolver could know is bad input.
    let out = blast(&["http://bad_host!/", "-t", "1s"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a valid name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_scenario_file_says_why_once() {
    for file in ["/no/such/scenario.toml", "/no/such/locustfile.py"] {
        let out = blast(&["-f", file]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert_eq!(err.matches("No such file").count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("blast: error: cannot read {file}")),
            "{err}"
        );
    }
}

#[test]
fn the_readme_installs_every_binary_it_uses() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let installed: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cargo install --path "))
        .map(|rest| rest.split_whitespace().next().unwrap())
        .collect();
    for path in &installed {
        assert!(
            std::path::Path::new(&format!("{root}/{path}/src/main.rs")).exists(),
            "cargo install --path {path} installs no binary"
        );
    }
    // The binaries the README's commands run, blast and blast-target, are both the cli's.
    assert!(installed.contains(&"cli"), "{installed:?}");
    let manifest = std::fs::read_to_string(format!("{root}/cli/Cargo.toml")).unwrap();
    if readme.contains("blast-target --") {
        assert!(
            manifest.contains("name = \"blast-target\""),
            "cargo install --path cli installs no blast-target"
        );
    }
}

#[test]
fn piped_output_keeps_whole_names() {
    let dir = std::env::temp_dir().join(format!("blast-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let long = "/api/v1/a-request-name-much-longer-than-eighty-columns-allow/with/more/segments/";
    let file = dir.join("long.toml");
    std::fs::write(
        &file,
        format!("[[user]]\nclass = \"U\"\nwait_time = \"constant(0.1)\"\n[[user.task]]\nrequest = \"GET /\"\nname = \"{long}\"\n[[user.task]]\nrequest = \"GET /status/204\"\n"),
    )
    .unwrap();
    let out = blast(&[
        "-f",
        file.to_str().unwrap(),
        "-t",
        "1s",
        "-u",
        "1",
        "--no-pin",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = String::from_utf8_lossy(&out.stdout);
    // No terminal, no width to fit: the name whole, and no field wrapped.
    assert!(summary.contains(&format!("GET {long} ")), "{summary}");
    assert!(!summary.contains('…'), "{summary}");
    assert!(
        !summary.lines().any(|l| l.starts_with(&" ".repeat(16))),
        "a wrapped line:\n{summary}"
    );
}

#[test]
fn print_plan_shows_the_resolved_run_without_secrets_and_sends_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let host = format!("http://user:pw-s3cret@{}", listener.local_addr().unwrap());
    let out = blast(&[
        "--print-plan",
        "--profile",
        "burst",
        "--peak",
        "200",
        "--host",
        &host,
        "-H",
        "Authorization: Bearer tok-s3cret",
        "--threshold",
        "p99<900ms",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("s3cret"), "a secret was printed:\n{text}");
    let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(plan["job"]["scenario"]["name"], "burst");
    assert_eq!(
        plan["job"]["scenario"]["headers"][0],
        "Authorization: [redacted]"
    );
    // --peak rescales the profile's stages: the schedule printed is the one that would run.
    let stages = plan["schedule"]["closed"]["users"]["stages"]
        .as_array()
        .unwrap();
    let peak = stages
        .iter()
        .map(|s| s["target"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(peak, 200.0, "{text}");
    let criteria = plan["criteria"].as_array().unwrap();
    assert_eq!(criteria.last().unwrap(), "p99<900ms");
    assert!(criteria.len() > 1, "the profile's own criteria come first");
    assert!(
        listener.accept().is_err(),
        "--print-plan opened a connection"
    );
}
