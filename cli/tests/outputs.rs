//! The result files of a real run of the `blast` binary against the reference target: Locust
//! CSV, JSON record, HDR interval log, and the HTML report rendered in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scenario with known failures: one task in five gets a 503, one a 404 under a name that
/// CSV must quote (a comma and quotes).
const MIXED: &str = r#"
name = "mixed"
criteria = ["p99<10s"]
[[user]]
class = "Mixed"
[[user.task]]
weight = 3
request = "GET /"
[[user.task]]
request = "GET /status/503"
[[user.task]]
request = "GET /status/404"
name = 'missing, "quoted" page'
"#;

/// Runs `command`, which must succeed (its stderr is the failure message).
fn succeed(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        command,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The records of a CSV file after its header, read by a real CSV parser (quotes included).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

struct Run {
    dir: PathBuf,
    json: serde_json::Value,
}

impl Run {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the mixed scenario for 3 s with every output; the folder does not exist beforehand.
fn run(tag: &str, extra: &[&str]) -> Run {
    let dir = std::env::temp_dir().join(format!("blast-outputs-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scenario =
        std::env::temp_dir().join(format!("blast-mixed-{}-{tag}.toml", std::process::id()));
    std::fs::write(&scenario, MIXED).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let mut args = vec![
        "-f".to_string(),
        scenario.to_str().unwrap().to_string(),
        "-u".into(),
        "4".into(),
        "-t".into(),
        "3s".into(),
        "--no-pin".into(),
        "--only-summary".into(),
        "--csv".into(),
        path("sub/run"),
        "--json".into(),
        path("run.json"),
        "--html".into(),
        path("run.html"),
        "--hdr-log".into(),
        path("run.hlog"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(&args)
        .output()
        .unwrap();
    std::fs::remove_file(scenario).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    Run { dir, json }
}

/// Locust 2.47.0's header line of `file`, from its real output kept as a fixture.
fn locust_header(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/report/tests/fixtures/locust-2.47.0")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\r\n").next().unwrap().to_string()
}

#[test]
fn csv_files_follow_locust_and_agree_with_the_final_summary() {
    let run = run("csv", &[]);
    for (mine, locust) in [
        ("sub/run_stats.csv", "locmix_stats.csv"),
        ("sub/run_stats_history.csv", "locmix_stats_history.csv"),
        ("sub/run_failures.csv", "locmix_failures.csv"),
        ("sub/run_exceptions.csv", "locmix_exceptions.csv"),
    ] {
        let text = run.text(mine);
        assert_eq!(
            text.split("\r\n").next().unwrap(),
            locust_header(locust),
            "{mine}"
        );
        assert!(
            text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'),
            "CRLF: {mine}"
        );
    }

    let rows = csv_rows(&run.text("sub/run_stats.csv"));
    let names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        names,
        ["/", "/status/503", "missing, \"quoted\" page", "Aggregated"],
        "sorted by name, Aggregated last"
    );
    let total = &rows[3];
    assert_eq!(total[0], "", "Aggregated has no type");
    // The final files agree with the final record.
    let count = |r: &Vec<String>, col: usize| r[col].parse::<u64>().unwrap();
    assert_eq!(count(total, 2), run.json["requests"].as_u64().unwrap());
    assert_eq!(count(total, 3), run.json["failures"].as_u64().unwrap());
    assert_eq!(
        count(&rows[0], 2) + count(&rows[1], 2) + count(&rows[2], 2),
        count(total, 2)
    );
    for failing in [&rows[1], &rows[2]] {
        assert_eq!(
            count(failing, 3),
            count(failing, 2),
            "every 503 and 404 fails"
        );
    }
    for row in &rows {
        assert_eq!(row.len(), 22);
        assert!(row[4..].iter().all(|v| v.parse::<f64>().is_ok()), "{row:?}");
    }

    // One history row per interval (Aggregated only without --csv-full-history).
    let history = csv_rows(&run.text("sub/run_stats_history.csv"));
    let intervals = run.json["history"].as_array().unwrap().len();
    assert_eq!(history.len(), intervals);
    assert!(history
        .iter()
        .all(|r| r[2].is_empty() && r[3] == "Aggregated"));

    // Failures grouped by method, name and error, with the status code readable.
    let failures = csv_rows(&run.text("sub/run_failures.csv"));
    assert_eq!(failures.len(), 2, "{failures:?}");
    let row = |name: &str| failures.iter().find(|r| r[1] == name).unwrap().clone();
    let (unavailable, missing) = (row("/status/503"), row("missing, \"quoted\" page"));
    assert_eq!(
        unavailable[..3],
        ["GET", "/status/503", "HTTPError(code=503)"]
    );
    assert_eq!(missing[2], "HTTPError(code=404)");
    assert_eq!(unavailable[3], rows[1][3]);
    assert_eq!(missing[3], rows[2][3]);
    assert!(unavailable[4].ends_with('Z') && unavailable[5].ends_with('Z'));
}

#[test]
fn full_history_adds_a_row_per_name_each_interval() {
    let run = run("full", &["--csv-full-history"]);
    let history = run.text("sub/run_stats_history.csv");
    let intervals = run.json["history"].as_array().unwrap().len();
    assert_eq!(csv_rows(&history).len(), intervals * 4);
}

#[test]
#[ignore = "needs pandas: .ci/run installs it and runs the ignored tests"]
fn the_plans_pandas_analysis_runs_on_the_stats_file() {
    let run = run("pandas", &[]);
    let script = format!(
        "import pandas as pd\n\
         df = pd.read_csv({:?})\n\
         print(df.groupby('Name')[['Request Count', 'Failure Count', 'Median Response Time']].sum().loc['Aggregated', 'Request Count'])\n",
        run.file("sub/run_stats.csv").to_str().unwrap()
    );
    let has_pandas = Command::new("python3")
        .args(["-c", "import pandas"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_pandas,
        "pandas is not installed (.ci/run installs it with pip)"
    );
    let out = succeed(Command::new("python3").args(["-c", &script]));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim(), run.json["requests"].to_string());
}

#[test]
fn the_json_record_has_names_series_criteria_and_metadata() {
    let run = run("json", &[]);
    let v = &run.json;
    for key in [
        "blast_version",
        "command",
        "host",
        "started_at",
        "ended_at",
        "threads",
        "pinned",
        "scenario",
        "model",
    ] {
        assert!(!v[key].is_null(), "{key} missing from {v}");
    }
    assert_eq!(v["scenario"], "mixed");
    assert_eq!(v["names"].as_array().unwrap().len(), 3);
    assert_eq!(v["criteria"][0]["criterion"], "p99<10s");
    assert_eq!(v["passed"], true);
    let history = v["history"].as_array().unwrap();
    assert!(history.len() >= 3, "{history:?}");
    let point = &history[0];
    for key in [
        "start_s",
        "t_s",
        "users",
        "rps",
        "fails_per_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    ] {
        assert!(!point[key].is_null(), "{key} missing from {point}");
    }
    let errors: Vec<&str> = v["failure_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert!(errors.contains(&"HTTPError(code=503)"), "{errors:?}");
    assert!(v["percentiles"].as_array().unwrap().len() > 3);
}

/// The intervals of an HDR interval log, decoded with the `hdrhistogram` crate, and their sum.
fn hdr_log(path: &Path) -> (Vec<(String, u64)>, hdrhistogram::Histogram<u64>) {
    use base64::Engine as _;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let bytes = std::fs::read(path).unwrap();
    let mut intervals = Vec::new();
    let mut total = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(h) = entry.unwrap() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(h.encoded_histogram())
                .unwrap();
            let histogram: hdrhistogram::Histogram<u64> = Deserializer::new()
                .deserialize(&mut decoded.as_slice())
                .unwrap();
            total.add(&histogram).unwrap();
            let tag = h.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
            intervals.push((tag, histogram.len()));
        }
    }
    (intervals, total)
}

#[test]
fn the_hdr_log_is_readable_by_hdrhistogram() {
    let run = run("hdr", &[]);
    let (intervals, total) = hdr_log(&run.file("run.hlog"));
    assert_eq!(
        intervals.len(),
        run.json["history"].as_array().unwrap().len()
    );
    assert!(
        intervals.iter().all(|(tag, _)| tag == "all"),
        "{intervals:?}"
    );
    // Every response's latency is in the log exactly once.
    let answered = run.json["requests"].as_u64().unwrap();
    assert_eq!(total.len(), answered);
}

#[test]
fn every_output_gives_the_same_percentiles_when_slots_are_missed() {
    // One connection to a server that takes 2 ms cannot send 2,000 requests/s: most slots
    // are missed. A missed slot is never sent, so it adds nothing to any latency histogram.
    let server = blast_target::Server::start(
        "127.0.0.1:0".parse().unwrap(),
        blast_target::Config {
            latency: blast_target::Latency::Fixed(std::time::Duration::from_millis(2)),
            ..Default::default()
        },
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("blast-missed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let url = format!("{}/", server.url());
    let blast = |args: &[&str]| succeed(Command::new(env!("CARGO_BIN_EXE_blast")).args(args));
    blast(&[
        &url,
        "--rate",
        "2000",
        "-t",
        "2s",
        "--max-connections",
        "1",
        "--threads",
        "1",
        "--no-pin",
        "-q",
        "--shard",
        "1/1",
        "--json",
        &path("run.json"),
        "--csv",
        &path("run"),
        "--html",
        &path("run.html"),
        "--hdr-log",
        &path("run.hlog"),
    ]);
    blast(&[
        "merge",
        &path("run.json"),
        "--json",
        &path("merged.json"),
        "-q",
    ]);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&read("run.json")).unwrap();
    let merged: serde_json::Value = serde_json::from_str(&read("merged.json")).unwrap();
    assert!(json["missed"].as_u64().unwrap() > 0, "no slot was missed");
    let (_, log) = hdr_log(&dir.join("run.hlog"));
    assert_eq!(log.len(), json["requests"].as_u64().unwrap());
    let stats_text = read("run_stats.csv");
    let header: Vec<&str> = stats_text.lines().next().unwrap().split(',').collect();
    let stats = csv_rows(&stats_text);
    let aggregated = stats.iter().find(|r| r[1] == "Aggregated").unwrap();
    let html = read("run.html");
    for (key, column, q) in [
        ("p50", "50%", 0.5),
        ("p99", "99%", 0.99),
        ("p999", "99.9%", 0.999),
    ] {
        let ms = json["latency_ms"][key].as_f64().unwrap();
        // The HDR log read by the hdrhistogram crate, by nearest rank as blast and Java's
        // HdrHistogram count (the value at rank ceil(q * n)).
        assert_eq!(
            ms,
            log.value_at_quantile(q) as f64 / 1000.0,
            "{key}: JSON vs HDR log"
        );
        assert_eq!(
            merged["latency_ms"][key], json["latency_ms"][key],
            "{key}: merge"
        );
        let col = header.iter().position(|h| *h == column).unwrap();
        assert_eq!(aggregated[col].parse::<f64>().unwrap(), ms, "{key}: CSV");
        if key == "p99" {
            assert!(
                html.contains(&format!("p99 <b>{ms:.3}</b> ms")),
                "{key}: HTML"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Chromium's binary, if one is installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The page as headless Chromium builds it (its scripts run), and Chromium's console.
fn dump_dom(page: &Path) -> (String, String) {
    let chromium = chromium()
        .expect("Chromium is not installed (.ci/run installs it: apt-get install chromium)");
    let out = Command::new(chromium)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{console}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
#[ignore = "needs Chromium: .ci/run installs it and runs the ignored tests"]
fn the_html_report_renders_in_chromium_without_script_errors() {
    let run = run("html", &[]);
    let (dom, console) = dump_dom(&run.file("run.html"));
    assert!(!console.contains("Uncaught"), "script error: {console}");
    // The page's own script marks it ready only when all four charts are drawn.
    assert!(dom.contains(r#"data-ready="yes""#), "not ready:\n{console}");
    assert_eq!(dom.matches(r#"class="chart""#).count(), 5);
    for title in [
        "Requests and failures per second",
        "Latency percentiles per interval",
        "Users over time",
        "Latency by percentile (HDR)",
        "Generator: busiest worker",
    ] {
        assert!(dom.contains(title), "{title}");
    }
    assert!(dom.contains("HTTPError(code=503)"));
}

#[test]
#[ignore = "needs Chromium: .ci/run installs it and runs the ignored tests"]
fn the_compare_page_renders_in_chromium_with_both_sides_drawn() {
    let (a, b) = (run("compare-a", &[]), run("compare-b", &[]));
    let page = a.file("compare.html");
    let out = Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(["compare", "--html"])
        .args([&page, &a.file("run.json")])
        .arg("--")
        .arg(b.file("run.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (dom, _) = dump_dom(&page);
    // Three charts (the distributions, requests/s and p99 over time), each with a line per
    // side (the distribution) or per run (the timelines).
    assert_eq!(dom.matches(r#"class="chart""#).count(), 3, "{dom}");
    assert_eq!(dom.matches("<polyline").count(), 2 + 2 + 2, "{dom}");
    for text in [
        "all requests",
        "Latency distribution",
        ">base<",
        ">new<",
        "p99.9",
    ] {
        assert!(dom.contains(text), "{text}");
    }
}

#[test]
fn blast_report_writes_the_results_report_from_run_records() {
    let dir = std::env::temp_dir().join(format!("blast-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let blast = env!("CARGO_BIN_EXE_blast");
    let runs: [&[&str]; 2] = [
        &["--profile", "cab", "-u", "10", "-r", "100", "-t", "2s"],
        &["--profile", "burst", "--stages", "1s:40,1s:40"],
    ];
    for (i, args) in runs.iter().enumerate() {
        let json = dir.join(format!("run{i}.json"));
        let status = Command::new(blast)
            .args(*args)
            .args(["--no-pin", "-q", "--json", json.to_str().unwrap()])
            .status()
            .unwrap();
        // The compressed burst cannot hold 10,000 req/s for a minute: exit code 3.
        assert!(matches!(status.code(), Some(0 | 3)), "{args:?}");
    }
    let out_file = dir.join("reports/P4-LOAD-TESTING-RESULTS.md");
    let report = |input: &Path| {
        Command::new(blast)
            .args(["report", input.to_str().unwrap(), "-o"])
            .arg(&out_file)
            .output()
            .unwrap()
    };
    let out = report(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&out_file).unwrap();
    for expected in [
        "## Performance baseline targets",
        "| Scenario 1: 100 users create, list and inspect deployments concurrently | - | not run | - |",
        // Short runs with other loads than the profiles': not comparable, rather than FAIL.
        "| Scenario 2: 50 CAB approvers work through a backlog of 100+ pending approvals | - | up to 10 users (closed model) | not comparable to the plan (10 users, the plan 50; 2 s, the plan 300 s;",
        "| Scenario 4: ramp to --peak users (default 1000) in 1 min, hold 2 min, ramp down in 1 min | - | up to 40 users (closed model) | not comparable to the plan (40 users, the plan 1000;",
        "## Scenario 2: 50 CAB approvers work through a backlog of 100+ pending approvals",
        "`/api/v1/cab/[id]/approve/:status409==0`",
        "## Bottleneck analysis",
        "## Top optimisation opportunities",
    ] {
        assert!(md.contains(expected), "{expected:?} missing from:\n{md}");
    }
    // Five charts per run, and the series of any finding (how many depends on the run: a
    // busy machine may make one), each linked from the report.
    let charts: Vec<String> = std::fs::read_dir(dir.join("reports/P4-LOAD-TESTING-RESULTS-charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let (findings, per_run): (Vec<&String>, Vec<&String>) =
        charts.iter().partition(|c| c.contains("-finding"));
    assert_eq!(per_run.len(), 10, "five charts per run: {charts:?}");
    for chart in findings {
        assert!(
            md.contains(chart.as_str()),
            "{chart} is not linked from the report"
        );
    }
    assert!(md.contains("(P4-LOAD-TESTING-RESULTS-charts/cab-throughput.svg)"));
    // Garbage in: a clear one-line error.
    std::fs::write(dir.join("bad.json"), "{}").unwrap();
    let bad = report(&dir.join("bad.json"));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a blast run record"));
    // A stray JSON file in the folder is skipped with a warning, not fatal.
    let skipped = report(&dir);
    assert!(
        skipped.status.success(),
        "{}",
        String::from_utf8_lossy(&skipped.stderr)
    );
    let warning = String::from_utf8_lossy(&skipped.stderr);
    assert!(
        warning.contains("skipping") && warning.contains("bad.json"),
        "{warning}"
    );
    assert!(String::from_utf8_lossy(&skipped.stdout).contains("from 2 run(s)"));
    let md = std::fs::read_to_string(&out_file).unwrap();
    assert!(md.contains("not comparable to the plan (10 users"), "{md}");
    std::fs::remove_dir_all(dir).unwrap();
}
