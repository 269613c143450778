//! `blast --shard` records and `blast merge`: exact merges, criteria judged on the merged data,
//! the refusals, and a record that survives being written and read back.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use blast_report::RunRecord;
use blast_target::{Config, Server};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

fn blast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(args)
        .output()
        .expect("blast runs")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("blast-merge-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `n` shards of `args` together (one common --start-at); returns their records and exit
/// codes.
fn shards(n: usize, args: &[&str], out: &Path) -> (Vec<PathBuf>, Vec<i32>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let at = format!("{:.3}", now.as_secs_f64() + 1.5);
    let children: Vec<_> = (1..=n)
        .map(|i| {
            let record = out.join(format!("shard{i}.json"));
            let child = Command::new(env!("CARGO_BIN_EXE_blast"))
                .args(args)
                .args(["--shard", &format!("{i}/{n}"), "--start-at", &at])
                .args(["--no-pin", "-q", "--threads", "1", "--json"])
                .arg(&record)
                .spawn()
                .unwrap();
            (record, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(record, mut child)| (record, child.wait().unwrap().code().unwrap()))
        .unzip()
}

fn merge(records: &[PathBuf], extra: &[&str]) -> Output {
    let mut args = vec!["merge"];
    args.extend(records.iter().map(|p| p.to_str().unwrap()));
    args.extend(extra);
    blast(&args)
}

/// The sum of the shards' cumulative latency histograms, decoded with the hdrhistogram crate.
fn summed_histogram(records: &[PathBuf]) -> Histogram<u64> {
    let mut sum = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for r in records {
        for name in read(r)["exact"]["names"].as_array().unwrap() {
            let bytes = STANDARD.decode(name["latency"].as_str().unwrap()).unwrap();
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .unwrap();
            sum.add(h).unwrap();
        }
    }
    sum
}

#[test]
fn shards_merge_exactly_and_the_criteria_judge_the_merged_run() {
    let config = Config {
        latency: blast_target::Latency::Uniform {
            min: std::time::Duration::from_millis(1),
            max: std::time::Duration::from_millis(4),
        },
        ..Config::default()
    };
    let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let out = dir("exact");
    // 300 requests/s for 2 s, split over 3 shards: each sends about 200, the run 600.
    let (records, codes) = shards(
        3,
        &[
            &server.url(),
            "--rate",
            "300",
            "-t",
            "2s",
            "--threshold",
            "requests>=500",
            "--threshold",
            "p99<60s",
        ],
        &out,
    );
    // Each shard alone fails the count; the run as a whole passes it.
    assert_eq!(codes, [3, 3, 3]);
    let merged = out.join("merged.json");
    let csv = out.join("merged");
    let m = merge(
        &records,
        &[
            "--json",
            merged.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    assert!(m.status.success(), "{}", stderr(&m));
    let text = String::from_utf8(m.stdout).unwrap();
    assert!(text.contains("merged from 3 of 3 shards"), "{text}");
    let v = read(&merged);
    let requests = v["requests"].as_u64().unwrap();
    assert_eq!(requests, server.served(), "{v}");
    assert_eq!(v["cancelled"], 0);
    assert!(requests >= 500, "{v}");
    // The shards' interleaved timetables make one: 300/s for 2 s, every slot sent or (on a
    // busy machine) missed, and the merge missing what the shards missed.
    let missed = v["missed"].as_u64().unwrap();
    assert_eq!(v["scheduled_slots"], 600, "{v}");
    assert_eq!(requests + missed, 600, "{v}");
    let shards_missed: u64 = records
        .iter()
        .map(|r| read(r)["missed"].as_u64().unwrap())
        .sum();
    assert_eq!(missed, shards_missed, "{v}");
    assert_eq!(v["passed"], true, "{v}");
    assert_eq!(v["merged"]["shards"], serde_json::json!([1, 2, 3]));
    // The merged percentiles are the sum of the shards' histograms, exactly.
    let sum = summed_histogram(&records);
    assert_eq!(sum.len(), requests);
    for (key, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        let want = sum.value_at_quantile(q) as f64 / 1000.0;
        assert_eq!(v["latency_ms"][key].as_f64().unwrap(), want, "{key}");
    }
    // Interval by interval, the merged run counts what the shards counted.
    let shard_records: Vec<serde_json::Value> = records.iter().map(|r| read(r)).collect();
    let first: u64 = shard_records
        .iter()
        .map(|s| s["history"][0]["names"][0]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(v["history"][0]["names"][0]["requests"], first);
    // The CSV files are written from the merged run.
    let stats = std::fs::read_to_string(out.join("merged_stats.csv")).unwrap();
    assert!(
        stats.contains(&format!(",Aggregated,{requests},0,")),
        "{stats}"
    );
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn a_merge_refuses_records_that_are_not_one_run_in_one_line() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let out = dir("refuse");
    let (records, codes) = shards(2, &[&server.url(), "-u", "2", "-t", "1s"], &out);
    assert_eq!(codes, [0, 0]);
    let changed = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = read(&records[1]);
        edit(&mut v);
        let path = out.join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path
    };
    let other_run = changed("run.json", &|v| v["exact"]["run_id"] = "x".into());
    let other_scenario = changed("scenario.json", &|v| {
        v["exact"]["scenario_digest"] = "0".into()
    });
    let other_load = changed("load.json", &|v| {
        v["exact"]["run_time_ns"] = 5_000_000_000u64.into()
    });
    let no_data = changed("old.json", &|v| {
        v.as_object_mut().unwrap().remove("exact");
    });
    let cut = changed("cut.json", &|v| {
        v["exact"]["intervals"].as_array_mut().unwrap().pop();
    });
    // Crafted records that are consistent with the first in what it compares, but not in
    // themselves.
    let no_count = changed("count.json", &|v| v["exact"]["count"] = 0.into());
    let no_interval = changed("interval.json", &|v| v["exact"]["interval_ns"] = 0.into());
    let extra_names = changed("names.json", &|v| {
        let names = &mut v["exact"]["intervals"][0]["names"];
        let copy = names.clone();
        names
            .as_array_mut()
            .unwrap()
            .extend(copy.as_array().unwrap().clone());
    });
    let not_json = out.join("not.json");
    std::fs::write(&not_json, "{\"name\": 1}").unwrap();
    let first = records[0].clone();
    for (given, says) in [
        (vec![first.clone(), first.clone()], "are both shard 1/2"),
        (vec![first.clone(), other_run], "run ids"),
        (vec![first.clone(), other_scenario], "different scenarios"),
        (vec![first.clone(), other_load], "different loads"),
        (vec![first.clone(), no_data], "has no exact data"),
        (vec![first.clone(), cut], "a record was changed or cut"),
        (vec![first.clone(), not_json], "is not a blast run record"),
        (vec![first.clone(), no_count], "it says it is shard 2/0"),
        (
            vec![first.clone(), no_interval],
            "its interval or run time is zero",
        ),
        (
            vec![first.clone(), extra_names],
            "interval 1 has 2 names where the run has 1",
        ),
    ] {
        let m = merge(&given, &["-q"]);
        let err = stderr(&m);
        assert_eq!(m.status.code(), Some(2), "{says}: {err}");
        assert!(err.contains(says), "{says}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    // A missing shard is named; what was given is still written, and the exit code says the
    // results are incomplete.
    let merged = out.join("part.json");
    let m = merge(&records[..1], &["-q", "--json", merged.to_str().unwrap()]);
    assert_eq!(m.status.code(), Some(1), "{}", stderr(&m));
    assert!(
        stderr(&m).contains("shard 2 of 2 missing"),
        "{}",
        stderr(&m)
    );
    assert_eq!(read(&merged)["merged"]["missing"], serde_json::json!([2]));
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn a_record_reads_back_the_same_and_merging_one_run_reproduces_it() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let out = dir("one");
    let record = out.join("run.json");
    let run = blast(&[
        &server.url(),
        "-u",
        "3",
        "-t",
        "2s",
        "--no-pin",
        "-q",
        "--threshold",
        "p99<60s",
        "--shard",
        "1/1",
        "--json",
        record.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = std::fs::read_to_string(&record).unwrap();
    let parsed = RunRecord::from_json(&text).unwrap();
    assert_eq!(parsed.to_json(), text);
    assert!(parsed.exact.is_some());

    let again = out.join("again.json");
    let m = merge(
        std::slice::from_ref(&record),
        &["-q", "--json", again.to_str().unwrap()],
    );
    assert!(m.status.success(), "{}", stderr(&m));
    let merged = RunRecord::from_json(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(merged.requests, parsed.requests);
    assert_eq!(merged.latency_ms, parsed.latency_ms);
    assert_eq!(merged.names, parsed.names);
    assert_eq!(merged.criteria, parsed.criteria);
    assert_eq!(merged.phases, parsed.phases);
    assert_eq!(merged.history.len(), parsed.history.len());
    for (a, b) in merged.history.iter().zip(&parsed.history) {
        assert_eq!((a.rps, a.p99_ms, a.users), (b.rps, b.p99_ms, b.users));
    }
    std::fs::remove_dir_all(out).unwrap();
}
