//! No secret given on the command line reaches an artifact: runs with an `Authorization`
//! header, a `user:password@` URL with an `api_key` in its query, a PostgreSQL monitor with a password and web credentials
//! write their CSV files, JSON records, HTML pages, HDR logs, `blast report`'s markdown and
//! `blast k8s`'s Job, and print their summaries and logs; none of them holds a secret.
//! PostgreSQL is Debian's, installed by `.ci/run`, on a Unix socket in a private folder.

use blast_target::{Config, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SECRETS: [&str; 5] = [
    "S3CRET-header",
    "pw-in-url",
    "pw-in-query",
    "pw-of-postgres",
    "pw-of-web",
];

/// A PostgreSQL server of its own, listening only on a Unix socket in `dir`; stopped when
/// dropped.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
}

impl Postgres {
    fn start(dir: &Path) -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.flatten().map(|v| v.path().join("bin")).max())
            .filter(|bin| bin.join("initdb").exists())
            .expect("PostgreSQL is installed (.ci/run installs it: apt-get install postgresql)");
        let dir = dir.join("pg");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("pw"), "pw-of-postgres\n").unwrap();
        let pg = Postgres { bin, dir };
        // PostgreSQL refuses to run as root: then its own user runs it, in a folder it owns.
        if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&pg.dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &["-A", "scram-sha-256", "-U", "blast", "--pwfile"],
            &[&pg.dir.join("pw"), Path::new("-D"), &data],
        );
        let options = format!(
            "-c listen_addresses= -c unix_socket_directories={}",
            pg.dir.display()
        );
        pg.run(
            "pg_ctl",
            &["-w", "-o", &options, "-l"],
            &[
                &pg.dir.join("log"),
                Path::new("-D"),
                &data,
                Path::new("start"),
            ],
        );
        pg
    }

    /// Runs one of PostgreSQL's tools, as its own user when this is root.
    fn run(&self, tool: &str, args: &[&str], paths: &[&Path]) {
        let program = self.bin.join(tool);
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let out = command.args(args).args(paths).output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgres://blast:PASSWORD@SOCKET-FOLDER/postgres`.
    fn url(&self) -> String {
        let folder = self.dir.to_str().unwrap().replace('/', "%2F");
        format!("postgres://blast:pw-of-postgres@{folder}/postgres")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        self.run("pg_ctl", &["-m", "immediate", "stop", "-D"], &[&data]);
    }
}

fn blast(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "blast {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    found
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
    }
}

#[test]
#[ignore = "needs PostgreSQL and curl: .ci/run installs them and runs the ignored tests"]
fn no_artifact_keeps_a_secret_from_the_command_line() {
    let scratch = tempfile::tempdir().unwrap();
    let postgres = Postgres::start(scratch.path());
    let out = tempfile::tempdir().unwrap();
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let host = server.url().replace("http://", "http://alice:pw-in-url@");
    let url = format!("{host}/?api_key=pw-in-query");
    let file = |name: &str| out.path().join(name).to_str().unwrap().to_string();
    let (pg, header) = (postgres.url(), "Authorization: Bearer S3CRET-header");
    let common = [&url, "-H", header, "--monitor-postgres", &pg];
    let load = ["-u", "2", "-t", "2s", "--no-pin"];

    let mut printed = Vec::new();
    let (csv, json, html, hlog) = (
        file("run"),
        file("run.json"),
        file("run.html"),
        file("run.hlog"),
    );
    let mut args: Vec<&str> = common.to_vec();
    args.extend(load);
    args.extend([
        "--csv",
        &csv,
        "--json",
        &json,
        "--html",
        &html,
        "--hdr-log",
        &hlog,
    ]);
    printed.push(blast(&args));
    // The record does hold the monitored database's numbers: the password was used.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let command = record["command"].to_string();
    assert!(command.contains("postgres://[redacted]@"), "{command}");
    assert!(command.contains("Authorization: [redacted]"), "{command}");
    assert!(
        record.to_string().contains("\"pg.max_connections\""),
        "no PostgreSQL sample in {record}"
    );

    // The web UI, started with credentials, runs once and quits.
    let (web_json, web_csv) = (file("web.json"), file("web"));
    let mut args = vec!["--web", "--web-port", "0", "--web-auth", "alice:pw-of-web"];
    args.extend([
        "--autostart",
        "--autoquit",
        "0",
        "--json",
        &web_json,
        "--csv",
        &web_csv,
    ]);
    args.extend(common);
    args.extend(load);
    printed.push(blast(&args));
    assert!(Path::new(&web_json).exists());

    let report = file("report.md");
    printed.push(blast(&["report", "-o", &report, &json, &web_json]));
    assert!(Path::new(&report).exists());

    // blast k8s: the Job and any ConfigMap hold no secret (the Secret holds them).
    let mut args = vec!["k8s", "--shards", "2", "--host", &host, "-H", header];
    args.extend(["--monitor-postgres", &pg]);
    let k8s = blast(&args);
    let list: serde_json::Value = serde_json::from_slice(&k8s.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["kind"] == "Secret"), "{list}");
    for item in items.iter().filter(|i| i["kind"] != "Secret") {
        assert_no_secret("blast k8s's manifests", item.to_string().as_bytes());
    }
    assert_no_secret("blast k8s's log", &k8s.stderr);

    let written = files(out.path());
    assert!(written.len() >= 10, "{written:?}");
    for (path, bytes) in written {
        assert_no_secret(&path.display().to_string(), &bytes);
    }
    for (i, out) in printed.iter().enumerate() {
        assert_no_secret(&format!("the output of command {i}"), &out.stdout);
        assert_no_secret(&format!("the log of command {i}"), &out.stderr);
    }
}
