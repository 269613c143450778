//! Locustfiles run as they are (`blast -f locustfile.py`) and converted (`blast convert`),
//! against the built-in reference target; what does not translate is refused with every place.

use std::path::PathBuf;
use std::process::{Command, Output};

fn blast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs blast with `args` and `--json`, which must succeed; returns the record and stderr.
fn record(args: &[&str]) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let mut all = args.to_vec();
    all.extend(["--no-pin", "-q", "--json", json.to_str().unwrap()]);
    let out = blast(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (record, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn locustfile(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../locust/tests/locustfiles/{name}"));
    path.to_str().unwrap().to_string()
}

#[test]
fn a_locustfile_runs_as_it_is_against_the_reference_target() {
    let lf = locustfile("deployments.py");
    let (record, _) = record(&["-f", &lf, "-u", "4", "-r", "100", "-t", "3s"]);
    assert_eq!(record["failures"], 0, "{record}");
    assert_eq!(record["scenario"], "deployments");
    let names: Vec<String> = record["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{} {}",
                n["method"].as_str().unwrap(),
                n["name"].as_str().unwrap()
            )
        })
        .collect();
    for name in [
        "POST /api/v1/auth/token/",
        "POST /api/v1/deployments/",
        "GET /api/v1/deployments/",
        "GET /api/v1/deployments/[id]/",
    ] {
        assert!(names.contains(&name.to_string()), "{name} not in {names:?}");
    }
    // Each of the 4 users logged in once, with the token then sent on every request.
    let login = &record["names"][0];
    assert_eq!(login["requests"], 4, "{record}");
}

#[test]
fn blast_convert_writes_a_scenario_that_runs_and_check_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("scenario.toml");
    let lf = locustfile("deployments.py");
    let out = blast(&["convert", &lf, "-o", toml.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(
        text.contains("# deployments.py:9 class DeploymentUser"),
        "{text}"
    );
    let out = blast(&[
        "-f",
        toml.to_str().unwrap(),
        "-u",
        "2",
        "-t",
        "1s",
        "--no-pin",
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = blast(&["convert", "--check", &lf]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("everything translates"));
}

#[test]
fn what_does_not_translate_is_refused_with_every_place() {
    let lf = locustfile("unsupported.py");
    for args in [vec!["-f", &lf, "-t", "1s"], vec!["convert", "--check", &lf]] {
        let out = blast(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for place in [
            "unsupported.py:4:1: class Mqtt extends User, which has no HTTP client",
            "unsupported.py:15:9: while loops",
            "unsupported.py:20:37: files= (a multipart upload) is not supported",
        ] {
            assert!(err.contains(place), "{place} not in {err}");
        }
    }
}

#[test]
fn lenient_leaves_out_the_tasks_that_do_not_translate_and_runs_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let lf = dir.path().join("mixed.py");
    std::fs::write(
        &lf,
        "from locust import HttpUser, task, constant\n\
         class Visitor(HttpUser):\n    wait_time = constant(0.1)\n\
         \n    @task\n    def home(self):\n        self.client.get(\"/\")\n\
         \n    @task\n    def loop(self):\n        while True:\n            self.client.get(\"/x\")\n",
    )
    .unwrap();
    let lf = lf.to_str().unwrap();
    let strict = blast(&["-f", lf, "-t", "1s", "--no-pin", "-q"]);
    assert_eq!(strict.status.code(), Some(2));
    let (record, err) = record(&["-f", lf, "--lenient", "-u", "2", "-t", "1s"]);
    assert!(
        err.contains("mixed.py:10: task loop of class Visitor is left out (line 11: while loops"),
        "{err}"
    );
    assert_eq!(record["names"].as_array().unwrap().len(), 1, "{record}");
    assert_eq!(record["names"][0]["name"], "/");
}

#[test]
fn user_classes_are_picked_by_name_as_in_locust() {
    let lf = locustfile("api_shapes.py");
    let (record, _) = record(&["-f", &lf, "HealthUser", "-u", "2", "-t", "1s"]);
    let sent: Vec<&str> = record["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["requests"].as_u64().unwrap() > 0)
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["/"], "{record}");
    let out = blast(&["-f", &lf, "Nope", "-t", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no user class Nope in the scenario (its classes: ApiUser, HealthUser)"),
        "{err}"
    );
}
