//! `--ca-cert` against a real server, nginx, serving a certificate made the usual way
//! (`openssl req -x509`, which marks it CA:TRUE): passed as itself it is trusted, as curl and
//! wrk trust it; a different self-signed certificate is still refused, with a message that
//! names both ways out. nginx and openssl are installed by `.ci/run`.

mod support {
    pub mod nginx;
}

use std::path::Path;
use std::process::{Command, Output};
use support::nginx::{self_signed, Nginx};

fn blast(port: u16, ca: &Path, json: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blast"))
        .arg(format!("https://127.0.0.1:{port}/"))
        .args(["-u", "2", "-t", "1s", "-q", "--no-pin", "--ca-cert"])
        .arg(ca)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs nginx and openssl: .ci/run installs them and runs the ignored tests"]
fn a_pinned_openssl_certificate_is_trusted_and_another_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "served");
    let (other, _) = self_signed(dir.path(), "other");
    let nginx = Nginx::start(dir.path(), 1, |ports| {
        format!(
            "access_log off; server {{ listen 127.0.0.1:{} ssl;\n\
             ssl_certificate {}; ssl_certificate_key {};\n\
             location / {{ return 200 \"ok\\n\"; }} }}",
            ports[0],
            cert.display(),
            key.display()
        )
    });

    let json = dir.path().join("pinned.json");
    let out = blast(nginx.ports[0], &cert, &json);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(record["requests"].as_u64().unwrap() > 0, "{record}");
    assert_eq!(record["failures"], 0, "{record}");

    let out = blast(nginx.ports[0], &other, &dir.path().join("other.json"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca-cert") && err.contains("--insecure"),
        "{err}"
    );
}
