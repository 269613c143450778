//! The generator watching itself and the target: `blast selftest`, generator-bound marking,
//! `--monitor-pid` and `--monitor-cmd`. Loopback only, every run bounded.

use blast_target::{Config, MinimalServer, Server};
use std::process::{Command, Output};
use std::sync::Mutex;

/// These tests judge CPU use: they run one at a time, so they do not judge each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn blast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(args)
        .output()
        .unwrap()
}

fn run_json(name: &str, args: &[&str]) -> serde_json::Value {
    let path = std::env::temp_dir().join(format!(
        "blast-selfcheck-{}-{name}.json",
        std::process::id()
    ));
    let mut all = args.to_vec();
    all.extend(["--only-summary", "--json", path.to_str().unwrap()]);
    let out = blast(&all);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(path).unwrap();
    v
}

#[test]
fn selftest_prints_the_ceiling_per_core_and_the_cores_a_rate_needs() {
    let _one = serial();
    let out = blast(&["selftest", "-t", "3s", "-u", "16", "--rate", "50000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "per core",
        "requests/s at most",
        "CPU-µs per request",
        "cores needed",
        "50000 req/s:",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

/// Whether a loaded run comes out generator-bound depends on the machine and what else runs
/// on it, so this only checks that the verdict is there with its evidence; the verdict's rules
/// are tested on constructed samples (`blast_report::GeneratorCheck`), and `blast selftest`
/// measures the live ceiling.
#[test]
fn every_run_carries_a_generator_verdict_with_its_evidence() {
    let _one = serial();
    let target = MinimalServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("{}/", target.url());
    let v = run_json("verdict", &[&url, "--threads", "1", "-u", "64", "-t", "3s"]);
    let g = &v["generator"];
    assert!(g["bound"].is_boolean() && g["stalled"].is_boolean(), "{g}");
    let (saturated, intervals) = (
        g["saturated_intervals"].as_u64().unwrap(),
        g["intervals"].as_u64().unwrap(),
    );
    assert!(intervals >= 1 && saturated <= intervals, "{g}");
    // Whatever the machine did, the verdict follows its own rule from its own counts, and
    // the evidence leads with what was decided.
    let bound = g["bound"].as_bool().unwrap();
    assert_eq!(bound, saturated >= 2 && saturated * 10 >= intervals, "{g}");
    // The first interval (no CPU reading yet) and the partial last are not judged.
    assert!(
        intervals as usize <= v["history"].as_array().unwrap().len(),
        "{g}"
    );
    let evidence = g["evidence"].as_str().unwrap();
    let verdict = if bound {
        "generator-bound"
    } else {
        "not generator-bound"
    };
    if g["stalled"].as_bool().unwrap() {
        assert!(evidence.starts_with("generator stalled at"), "{evidence}");
        assert!(evidence.contains(&format!("; {verdict}:")), "{evidence}");
    } else {
        assert!(evidence.starts_with(&format!("{verdict}:")), "{evidence}");
    }
}

#[test]
fn a_light_paced_run_is_not_generator_bound_and_samples_itself() {
    let _one = serial();
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let v = run_json(
        "calm",
        &[&server.url(), "--rate", "50", "-t", "3s", "--no-pin"],
    );
    assert_eq!(v["generator"]["bound"], false, "{}", v["generator"]);
    let history = v["history"].as_array().unwrap();
    // Worker CPU is read from /proc from the second interval on; memory every interval.
    assert!(
        history[1]["sample"]["worker_cpu_pct"].is_number(),
        "{}",
        history[1]
    );
    assert!(
        history[0]["sample"]["monitor"]["blast.rss_mb"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        history[0]["sample"]["monitor"]["blast.fds"]
            .as_f64()
            .unwrap()
            >= 3.0
    );
}

#[test]
fn a_process_and_a_command_are_monitored_into_every_output() {
    let _one = serial();
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let pid = std::process::id().to_string();
    let dir = std::env::temp_dir().join(format!("blast-monitor-{pid}"));
    let prefix = dir.join("run");
    let html = dir.join("run.html");
    let v = run_json(
        "monitor",
        &[
            &server.url(),
            "-u",
            "2",
            "-t",
            "3s",
            "--no-pin",
            "--monitor-pid",
            &pid,
            "--monitor-cmd",
            "answer=echo 'the answer is 42'",
            "--csv",
            prefix.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let sample = &v["history"][1]["sample"]["monitor"];
    assert_eq!(sample["answer"], 42.0, "{sample}");
    assert!(
        sample[format!("pid{pid}.rss_mb")].as_f64().unwrap() > 0.0,
        "{sample}"
    );
    assert!(
        sample[format!("pid{pid}.threads")].as_f64().unwrap() >= 1.0,
        "{sample}"
    );
    let history = std::fs::read_to_string(dir.join("run_blast_history.csv")).unwrap();
    let header = history.lines().next().unwrap();
    assert!(
        header.contains("Generator CPU %") && header.ends_with(&format!("pid{pid}.fds,answer")),
        "{header}"
    );
    assert!(
        history.lines().nth(2).unwrap().ends_with(",42"),
        "{history}"
    );
    assert!(std::fs::read_to_string(html).unwrap().contains("Monitored"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn monitoring_a_missing_process_is_bad_input() {
    let out = blast(&["-t", "1s", "--monitor-pid", "4000000000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such process"));
    let out = blast(&["-t", "1s", "--monitor-cmd", "no equals sign"]);
    assert_eq!(out.status.code(), Some(2));
}
