//! `blast compare` proven on blast's own runs against the reference target: runs of one
//! configuration are called unchanged, a planted latency increase and failure rate are found
//! and their intervals contain them, and bad input is refused. Every load goes to 127.0.0.1
//! at 200 requests/s for 8 s.
//!
//! The target's delay (uniform, 200 to 600 ms) dwarfs what the machine adds, and the runs of
//! a comparison run at the same time, so a busy machine slows both sides alike: the tests do
//! not depend on the machine being idle.

use blast_target::{Config, Latency, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn target(min_ms: u64, max_ms: u64, error_rate: f64) -> Server {
    let config = Config {
        latency: Latency::Uniform {
            min: Duration::from_millis(min_ms),
            max: Duration::from_millis(max_ms),
        },
        error_rate,
        threads: 2,
        ..Config::default()
    };
    Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

fn temp(test: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blast-compare-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Held by each test that runs many blasts at once, so that two such tests do not load the
/// machine together (each comparison's runs still run side by side).
static MANY_RUNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs blast against each (server, record) at once, 200 requests/s for 8 s each.
fn runs_together(jobs: &[(&Server, &PathBuf)]) {
    let children: Vec<_> = jobs
        .iter()
        .map(|(server, record)| {
            Command::new(env!("CARGO_BIN_EXE_blast"))
                .arg(format!("{}/", server.url()))
                // One worker each: up to seven runs share the machine's two cores.
                .args([
                    "--rate",
                    "200",
                    "-t",
                    "8s",
                    "--threads",
                    "1",
                    "--no-pin",
                    "-q",
                ])
                .args(["--exit-code-on-error", "0", "--json"])
                .arg(record)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, (_, record)) in children.into_iter().zip(jobs) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            record.display(),
            stderr(&out)
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `blast compare ARGS`, its JSON read when it printed some.
fn compare(args: &[&str]) -> (Output, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_blast"))
        .arg("compare")
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The whole run's row.
fn all_requests(c: &Value) -> &Vec<Value> {
    assert_eq!(c["rows"][0]["name"], "all requests");
    c["rows"][0]["changes"].as_array().unwrap()
}

fn change<'a>(c: &'a Value, stat: &str) -> &'a Value {
    all_requests(c)
        .iter()
        .find(|ch| ch["stat"] == stat)
        .unwrap()
}

fn interval(change: &Value) -> (f64, f64) {
    let bound = |i: usize| change["interval"][i].as_f64().unwrap();
    (bound(0), bound(1))
}

/// 20 comparisons of two runs of one configuration (run in pairs, two pairs at a time). The
/// minimum effect (5 %) on top of the interval is what keeps noise from being called a
/// change, so the expected count of comparisons with a judged change is far below 1 in 20; a
/// rate as high as the 5 % allowed shows as 2 or more in 26 % of such tests, and a broken
/// interval or rule (say 25 % false calls) fails this test 98 % of the time. 20 comparisons of
/// 8-second runs take about 90 s.
#[test]
fn runs_of_one_configuration_are_no_change_in_at_least_19_of_20_comparisons() {
    let _alone = MANY_RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let server = target(200, 600, 0.0);
    let mut called = Vec::new();
    let mut raw = 0;
    for round in 0..10 {
        let files: Vec<PathBuf> = (0..4)
            .map(|i| temp("aa", &format!("{round}-{i}.json")))
            .collect();
        let jobs: Vec<_> = files.iter().map(|f| (&server, f)).collect();
        runs_together(&jobs);
        for (i, pair) in files.chunks(2).enumerate() {
            let (out, c) = compare(&["--json", path(&pair[0]), "--", path(&pair[1])]);
            assert!(out.status.success(), "{}", stderr(&out));
            // One comparison is one call however many of its rows (all requests and the one
            // name are the same requests here) and figures moved.
            let mut calls = Vec::new();
            for row in c["rows"].as_array().unwrap() {
                for ch in row["changes"].as_array().unwrap() {
                    let judged = ["better", "worse"].contains(&ch["verdict"].as_str().unwrap());
                    if judged {
                        calls.push(format!("{} {}", row["name"], ch));
                    }
                    let (lo, hi) = (&ch["interval"][0], &ch["interval"][1]);
                    if lo.as_f64().is_some_and(|lo| lo > 0.0)
                        || hi.as_f64().is_some_and(|hi| hi < 0.0)
                    {
                        raw += 1;
                    }
                }
            }
            if !calls.is_empty() {
                called.push(format!("round {round}, pair {i}: {}", calls.join("; ")));
            }
        }
    }
    // How often the interval alone excluded zero (no minimum effect), for the record.
    eprintln!(
        "A/A: {} of 20 comparisons called a change; intervals excluding zero: {raw} of 280",
        called.len()
    );
    assert!(
        called.len() <= 1,
        "A/A comparisons called a change:\n{}",
        called.join("\n")
    );
}

/// Three runs against a target 20 % slower than the base's (its delay from 240 to 720 ms)
/// against three base runs, and one run whose target fails 5 % of requests: both found, each
/// interval containing the planted effect, and the gates exit 4.
#[test]
fn a_planted_slowdown_and_failure_rate_are_found_within_their_intervals() {
    let _alone = MANY_RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let (base, slow, failing) = (
        target(200, 600, 0.0),
        target(240, 720, 0.0),
        target(200, 600, 0.05),
    );
    let files: Vec<PathBuf> = (0..7)
        .map(|i| temp("planted", &format!("{i}.json")))
        .collect();
    let servers = [&base, &base, &base, &slow, &slow, &slow, &failing];
    let jobs: Vec<_> = servers.iter().copied().zip(&files).collect();
    runs_together(&jobs);
    let (b, s, f) = (&files[0..3], &files[3..6], &files[6]);
    let mut args = vec!["--json"];
    args.extend(b.iter().map(|p| path(p)));
    args.push("--");
    args.extend(s.iter().map(|p| path(p)));
    let (out, c) = compare(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(c["method"].as_str().unwrap().starts_with("two-stage"));
    let rows: Vec<&str> = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        ["all requests", "GET /"],
        "each row once, however many runs"
    );
    // The machine adds about a millisecond to both sides, which dilutes the 20 % by about
    // 0.2 % at these delays: the interval must contain 20 %.
    for stat in ["p50", "p90", "p99"] {
        let ch = change(&c, stat);
        let (lo, hi) = interval(ch);
        assert_eq!(ch["verdict"], "worse", "{stat}: {ch}");
        assert!(
            lo <= 20.0 && 20.0 <= hi,
            "{stat}: the interval misses +20%: {ch}"
        );
    }
    assert_eq!(change(&c, "rps")["verdict"], "no_change");
    assert_eq!(change(&c, "failures")["verdict"], "no_change");

    let (out, c) = compare(&[
        "--json",
        path(&b[0]),
        path(&b[1]),
        path(&b[2]),
        "--",
        path(f),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ch = change(&c, "failures");
    let (lo, hi) = interval(ch);
    assert_eq!(ch["verdict"], "worse", "{ch}");
    assert!(
        lo <= 5.0 && 5.0 <= hi,
        "the interval misses +5 points: {ch}"
    );
    for stat in ["p50", "p90", "p99"] {
        assert_eq!(change(&c, stat)["verdict"], "no_change", "{stat}");
    }

    // The gates: crossed ones exit 4 and say which row; uncrossed ones exit 0.
    let sides = |new: &[PathBuf]| -> Vec<String> {
        let mut v: Vec<String> = b.iter().map(|p| path(p).to_string()).collect();
        v.push("--".into());
        v.extend(new.iter().map(|p| path(p).to_string()));
        v
    };
    let gated = |gates: &[&str], new: &[PathBuf]| {
        let mut args: Vec<String> = gates
            .iter()
            .flat_map(|g| ["--fail-on".to_string(), g.to_string()])
            .collect();
        args.extend(sides(new));
        compare(&args.iter().map(String::as_str).collect::<Vec<_>>()).0
    };
    let out = gated(&["p99>+10%"], s);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("p99 of all requests: +"),
        "{}",
        stderr(&out)
    );
    let out = gated(&["p99>+30%", "rps<-5%"], s);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = gated(&["failures>+1pp"], std::slice::from_ref(f));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));

    // A folder of runs as a trend: each against the previous run of its job, whichever order
    // their start times give (they started together): the verdict follows the two targets.
    let out = Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(["report", path(files[0].parent().unwrap()), "-o"])
        .arg(temp("planted-report", "report.md"))
        .output()
        .unwrap();
    let history = String::from_utf8(out.stdout).unwrap();
    let group = |file: &str| match file.trim_end_matches(".json").parse::<u8>().unwrap() {
        0..=2 => "base",
        3..=5 => "slow",
        _ => "failing",
    };
    let lines: Vec<&str> = history.lines().skip(1).take(7).collect();
    assert!(lines[0].ends_with("first of its scenario"), "{history}");
    for line in &lines[1..] {
        let (head, verdict) = line.split_once(" vs ").expect(&history);
        let file = head.split_whitespace().nth(1).unwrap();
        let (before, verdict) = verdict.split_once(": ").unwrap();
        let expected = match (group(before), group(file)) {
            // Two runs of one configuration: the A/A test above holds those to its rate.
            (a, b) if a == b => continue,
            ("base", "slow") => "slower: p50 +",
            ("slow", "base") => "faster: p50 -",
            (_, "failing") => "more failures: +5.00pp",
            ("failing", _) => "fewer failures: -5.00pp",
            _ => unreachable!(),
        };
        assert!(verdict.starts_with(expected), "{line}\n{history}");
    }

    // The terminal table fits 80 columns (the lines naming files are as long as their paths);
    // the Markdown table and the page are written.
    let (out, _) = compare(&[path(&b[0]), "--", path(&s[0])]);
    let table = String::from_utf8(out.stdout).unwrap();
    let rows = table
        .lines()
        .filter(|l| !l.starts_with("base ") && !l.starts_with("note: "));
    assert!(rows.clone().all(|l| l.chars().count() <= 80), "{table}");
    assert!(table.contains("slower"), "{table}");
    let (out, _) = compare(&["--markdown", path(&b[0]), "--", path(&s[0])]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("| all requests | p99 |"));
    let html = temp("planted", "compare.html");
    let (out, _) = compare(&["--html", path(&html), path(&b[0]), "--", path(&s[0])]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        page.matches("<svg").count(),
        3,
        "distribution, requests/s and p99 over time"
    );
}

/// Records that cannot be compared are refused with one line and exit code 2.
#[test]
fn bad_input_is_refused_with_one_line() {
    let server = target(1, 2, 0.0);
    let (a, b) = (temp("bad", "a.json"), temp("bad", "b.json"));
    runs_together(&[(&server, &a), (&server, &b)]);
    let text = std::fs::read_to_string(&a).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("exact");
    let old = temp("bad", "old.json");
    std::fs::write(&old, v.to_string()).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["names"][0]["name"] = "/other".into();
    let other = temp("bad", "other.json");
    std::fs::write(&other, v.to_string()).unwrap();
    let missing = temp("bad", "missing.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![path(&old), "--", path(&b)], "has no exact data"),
        (vec![path(&a), "--", path(&b), "--json"], "comes after `--`"),
        (vec![path(&a), "--", path(&missing)], "cannot read"),
        (
            vec![path(&a), "--", path(&other)],
            "ran different scenarios",
        ),
        (
            vec!["--fail-on", "max>+1%", path(&a), "--", path(&b)],
            "never judged",
        ),
        (vec![path(&a), path(&b)], "NEW.json"),
    ];
    for (args, says) in cases {
        let (out, _) = compare(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
