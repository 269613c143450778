//! Locust and blast, given the same locustfiles, send the same traffic: the request names,
//! their shares, their Authorization headers, JSON and form bodies, and the order inside
//! sequential task sets, as a logging proxy in front of the reference target saw them (`benches/locust_parity.py`, which states its tolerance).
//! Locust comes from PyPI (`.ci/run` installs it); the target is the workspace's `blast-target`.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "needs Locust 2.47 from PyPI: .ci/run installs it and runs the ignored tests"]
fn locust_and_blast_send_the_same_traffic_for_the_same_locustfiles() {
    let bin = Path::new(env!("CARGO_BIN_EXE_blast")).parent().unwrap();
    assert!(
        bin.join("blast-target").exists(),
        "blast-target is not built next to blast: cargo test --workspace builds it"
    );
    let locust = Command::new("python3")
        .args(["-m", "locust", "--version"])
        .output();
    assert!(
        locust.is_ok_and(|o| o.status.success()),
        "Locust is not installed (.ci/run installs it: pip install locust==2.47.0)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/locust_parity.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--seconds", "8", "--users", "10", "--bin"])
        .arg(bin)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "deployments.py",
        "cab.py",
        "connectors.py",
        "api_shapes.py",
        "quickstart.py",
        "tagged.py",
        "shaped.py",
        "checks.py",
        "tasksets.py",
        "forms.py",
    ] {
        assert!(
            report.contains(&format!("{file}: same traffic")),
            "{report}"
        );
    }
    // The sequential task set's order was checked, not skipped.
    assert!(
        report.contains("order in Operator.Lifecycle")
            && report.contains("0 and 0 out of order, ok"),
        "{report}"
    );
}
